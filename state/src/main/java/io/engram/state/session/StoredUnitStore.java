package io.engram.state.session;

import io.engram.engine.backend.Backend;
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
 * from the store (decoded, checksummed) when a layer needs it again.
 */
final class StoredUnitStore implements UnitStore {
    private record Key(long block, int layer) {}

    private final String session;
    private final MemoryStore store;
    private final Backend backend;
    private final int kvDim;
    private final int blockSize;
    private final int layers;
    private final Map<Key, float[][]> offloaded = new HashMap<>();
    /** Full blocks whose stored bytes are their current contents (read from the store, or written to it since). */
    private final java.util.Set<Long> persisted = new java.util.HashSet<>();
    private long bytes;
    private KvBlock lastDecoded;

    StoredUnitStore(String session, MemoryStore store, Backend backend, KvCache shape) {
        this.session = session;
        this.store = store;
        this.backend = backend;
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
        if (block.length() == block.capacity()) {
            persisted.add(block.id());
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
            KvBlock copy = decoded(block.id());
            int n = Math.min(copy.length(), block.length()) * kvDim;
            backend.read(copy.keys(layer), 0, keys, 0, n);
            backend.read(copy.values(layer), 0, values, 0, n);
        } catch (CorruptMemoryException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new IllegalStateException("session " + session + ": cannot read block " + block.id() + " back: " + e.getMessage(), e);
        }
    }

    /**
     * The stored block decoded, read once for the layers fetched one after another (a retrieval brings a block back
     * layer by layer): the last block decoded is kept.
     */
    private KvBlock decoded(long id) {
        if (lastDecoded != null && lastDecoded.id() == id) {
            return lastDecoded;
        }
        byte[] stored = store.getUnit(session, id);
        if (stored == null) {
            throw new IllegalStateException("session " + session + ": block " + id + " is neither offloaded nor stored");
        }
        lastDecoded = KvBlockCodec.decode(stored, new KvCache(backend, layers, kvDim, blockSize), backend,
                "session " + session + " block " + id);
        return lastDecoded;
    }

    @Override
    public void forget(KvBlock block) {
        persisted.remove(block.id());
        if (lastDecoded != null && lastDecoded.id() == block.id()) {
            lastDecoded = null;
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
