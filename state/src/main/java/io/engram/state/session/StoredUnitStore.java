package io.engram.state.session;

import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.kv.UnitStore;
import io.engram.state.codec.CorruptMemoryException;
import io.engram.state.codec.KvBlockCodec;
import io.engram.state.store.MemoryStore;
import java.util.HashMap;
import java.util.Map;

/**
 * {@link UnitStore} of one session in a {@link SessionMemoryRepository}: a layer the memory policy offloads is kept on the heap until
 * the block is persisted after the event (the repository brings every layer back to encode it); a layer of a full block
 * whose stored bytes are its contents (loaded from the store, or written since) is dropped without a copy and read back
 * from the store (checksummed, only that layer decoded) when a layer needs it again.
 */
final class StoredUnitStore implements UnitStore {
    private record Key(long block, int layer) {}

    private final String session;
    private final MemoryStore store;
    private final int kvDim;
    private final int blockSize;
    private final int layers;
    private final Map<Key, float[][]> offloaded = new HashMap<>();
    /** Full blocks whose stored bytes are their current contents (read from the store, or written to it since). */
    private final java.util.Set<Long> persisted = new java.util.HashSet<>();

    private long bytes;
    /** Stored bytes of the blocks read most recently (least recently used first), at most {@link #RECENT_BYTES}. */
    private final java.util.LinkedHashMap<Long, byte[]> recent = new java.util.LinkedHashMap<>(16, 0.75f, true);

    private long recentBytes;
    /** Bytes of stored blocks kept for the layers fetched next (a step's retrieved blocks, layer after layer). */
    static final long RECENT_BYTES = 16L << 20;

    StoredUnitStore(String session, MemoryStore store, KvCache shape) {
        this.session = session;
        this.store = store;
        this.kvDim = shape.kvDim();
        this.blockSize = shape.blockSize();
        this.layers = shape.layers();
    }

    @Override
    public void offload(KvBlock block, int layer, float[] keys, float[] values) {
        offloaded.put(new Key(block.id(), layer), new float[][] {keys.clone(), values.clone()});
        bytes += 4L * (keys.length + values.length);
    }

    /**
     * Records that the store holds {@code block} as it is now; a full block stays so (nothing is appended to it, and a
     * truncate never reaches stored tokens), so offloading it later needs no copy.
     */
    void persisted(KvBlock block) {
        byte[] stale = recent.remove(block.id()); // written again: read the new bytes when needed
        if (stale != null) {
            recentBytes -= stale.length;
        }
        if (block.length() == block.capacity()) {
            persisted.add(block.id());
        }
    }

    /** The block changed in place (dropped heads): its stored bytes are stale until it is persisted again. */
    @Override
    public void rewritten(KvBlock block) {
        persisted.remove(block.id());
        byte[] stale = recent.remove(block.id());
        if (stale != null) {
            recentBytes -= stale.length;
        }
    }

    @Override
    public boolean holds(KvBlock block) {
        return block.length() == block.capacity() && persisted.contains(block.id());
    }

    @Override
    public void fetch(KvBlock block, int layer, float[] keys, float[] values) {
        float[][] kv = offloaded.remove(new Key(block.id(), layer));
        if (kv != null) {
            bytes -= 4L * (kv[0].length + kv[1].length);
            System.arraycopy(kv[0], 0, keys, 0, Math.min(kv[0].length, keys.length));
            System.arraycopy(kv[1], 0, values, 0, Math.min(kv[1].length, values.length));
            return;
        }
        try {
            KvBlockCodec.decodeLayer(
                    stored(block.id()), layer, kvDim, keys, values, "session " + session + " block " + block.id());
        } catch (CorruptMemoryException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new IllegalStateException(
                    "session " + session + ": cannot read block " + block.id() + " back: " + e.getMessage(), e);
        }
    }

    /**
     * The stored bytes of a block, checksummed once when read: a retrieval brings its blocks back layer by layer (every
     * retrieved block for layer 0, then for layer 1, ...), so the bytes of the last few are kept and each layer is
     * decoded alone from them.
     */
    private byte[] stored(long id) {
        byte[] bytes = recent.get(id);
        if (bytes != null) {
            return bytes;
        }
        bytes = store.getUnit(session, id);
        if (bytes == null) {
            throw new IllegalStateException(
                    "session " + session + ": block " + id + " is neither offloaded nor stored");
        }
        String what = "session " + session + " block " + id;
        KvBlockCodec.Header h = KvBlockCodec.header(bytes, what);
        if (!h.checksumOk()) {
            throw new CorruptMemoryException(what + ": checksum mismatch; the block is damaged");
        }
        if (h.layers() != layers || h.kvDim() != kvDim || h.capacity() != blockSize) {
            throw new CorruptMemoryException(
                    "%s: block shape (capacity %d, layers %d, kvDim %d) does not fit the model's "
                                    .formatted(what, h.capacity(), h.layers(), h.kvDim())
                            + "cache");
        }
        recentBytes += bytes.length;
        recent.put(id, bytes);
        while (recentBytes > RECENT_BYTES && recent.size() > 1) {
            Long oldest = recent.keySet().iterator().next();
            recentBytes -= recent.remove(oldest).length;
        }
        return bytes;
    }

    @Override
    public void forget(KvBlock block) {
        persisted.remove(block.id());
        byte[] kept = recent.remove(block.id());
        if (kept != null) {
            recentBytes -= kept.length;
        }
        for (int l = 0; l < layers; l++) {
            float[][] kv = offloaded.remove(new Key(block.id(), l));
            if (kv != null) {
                bytes -= 4L * (kv[0].length + kv[1].length);
            }
        }
    }

    @Override
    public long bytes() {
        return bytes;
    }
}
