package io.engram.engine.kv;

/**
 * Where a session's KV rows go when a memory policy moves them out of engine memory, and where they come back from
 * when attention needs them again. Rows are per (block, layer): K and V of slots {@code [0, length)}, each
 * {@code length * kvDim} floats, keys un-rotated. The engine's default keeps them in host memory
 * ({@link HostUnitStore}); the stream job keeps them in RocksDB.
 *
 * <p>Used by one engine thread at a time, like the cache that owns it.
 */
public interface UnitStore {

    /** Keeps a copy of one layer of a block before the cache drops its backend buffers. */
    void offload(KvBlock block, int layer, float[] keys, float[] values);

    /**
     * Reads back what {@link #offload} kept for {@code (block, layer)} into {@code keys}/{@code values} (at least
     * {@code block.length() * kvDim} floats each).
     *
     * @throws IllegalStateException when nothing was kept for it
     */
    void fetch(KvBlock block, int layer, float[] keys, float[] values);

    /**
     * Whether the store already holds this block's current contents (e.g. a durable store the block was read from or
     * written to, and not appended to since): offloading it then drops its backend buffers without a copy, and
     * {@link #fetch} reads it back from the store.
     */
    default boolean holds(KvBlock block) {
        return false;
    }

    /**
     * The contents of a block changed in place (rows rewritten, e.g. dropped heads): whatever the store held as its
     * current contents ({@link #holds}) no longer is. Called while every layer of the block is in engine memory, so
     * copies kept for it may be forgotten.
     */
    default void rewritten(KvBlock block) {}

    /** Forgets everything kept for a block (truncated or dropped). */
    void forget(KvBlock block);

    /** Bytes held by the store (for reports). */
    long bytes();
}
