package io.engram.engine.kv;

import java.util.HashMap;
import java.util.Map;

/**
 * {@link UnitStore} in host memory: F32 copies of offloaded layers, keyed by (block id, layer), without the rows of
 * dropped heads ({@link KvBlock#droppedHeads}). The engine's default, and the host tier under a GPU backend.
 */
public final class HostUnitStore implements UnitStore {
    private record Key(long block, int layer) {}

    private record Rows(float[] keys, float[] values, int generation) {}

    private final Map<Key, Rows> rows = new HashMap<>();
    private long bytes;

    @Override
    public void offload(KvBlock block, int layer, float[] keys, float[] values) {
        Rows r = new Rows(kept(block, layer, keys), kept(block, layer, values), block.generation());
        Rows old = rows.put(new Key(block.id(), layer), r);
        bytes +=
                4L * (r.keys.length + r.values.length) - (old == null ? 0 : 4L * (old.keys.length + old.values.length));
    }

    @Override
    public void fetch(KvBlock block, int layer, float[] keys, float[] values) {
        Rows r = rows.get(new Key(block.id(), layer));
        if (r == null || r.generation != block.generation()) {
            throw new IllegalStateException("no offloaded rows for layer %d of %s".formatted(layer, block));
        }
        long dropped = block.droppedHeads(layer);
        if (dropped == 0) {
            System.arraycopy(r.keys, 0, keys, 0, Math.min(r.keys.length, keys.length));
            System.arraycopy(r.values, 0, values, 0, Math.min(r.values.length, values.length));
            return;
        }
        int kvDim = keys.length / block.length();
        HeadRows.spread(r.keys, keys, block.length(), kvDim, block.maskedKvHeads(), dropped);
        HeadRows.spread(r.values, values, block.length(), kvDim, block.maskedKvHeads(), dropped);
    }

    /** A copy of the rows without the block's dropped heads in this layer (they read back as zeros). */
    private static float[] kept(KvBlock block, int layer, float[] rows) {
        long dropped = block.droppedHeads(layer);
        if (dropped == 0 || block.length() == 0) {
            return rows.clone();
        }
        return HeadRows.keep(rows, block.length(), rows.length / block.length(), block.maskedKvHeads(), dropped);
    }

    /** Copies of a rewritten block are stale (kept under its earlier generation): forgotten. */
    @Override
    public void rewritten(KvBlock block) {
        forget(block);
    }

    @Override
    public void forget(KvBlock block) {
        for (int l = 0; l < block.layers(); l++) {
            Rows old = rows.remove(new Key(block.id(), l));
            if (old != null) {
                bytes -= 4L * (old.keys.length + old.values.length);
            }
        }
    }

    @Override
    public long bytes() {
        return bytes;
    }

    @Override
    public String toString() {
        return "HostUnitStore[%d layers kept, %d bytes]".formatted(rows.size(), bytes);
    }
}
