package io.engram.engine.kv;

import io.engram.engine.tensor.Buf;
import java.util.Arrays;

/**
 * A fixed-size block of the KV cache: up to {@code capacity} consecutive tokens of one session, for every layer. Keys
 * are stored UN-rotated; RoPE is applied at attention time with positions chosen by the memory policy, so a block can
 * be re-positioned when it is retrieved. This is the unit memory policies move, score, store and evict.
 *
 * <p>Not thread-safe: a block belongs to one session, used by one engine thread at a time.
 */
public final class KvBlock {
    private final long id;
    private final long firstSeq;
    private final int capacity;
    private final Buf[] keys; // per layer: (capacity, kvHeads*headDim), un-rotated; null while offloaded
    private final Buf[] values; // per layer: (capacity, kvHeads*headDim); null while offloaded
    private final float[] scores; // (capacity) per-token score (surprise, -log p of the token), NaN when unknown
    private final int[] positions; // (capacity) absolute positions the tokens were written at
    private final int[] tokens; // (capacity) token ids
    private final long[] sources; // (capacity) opaque source id per token (provenance), -1 when none
    private int length;
    private int generation; // changes whenever filled slots may be rewritten (truncate, restore, dropped heads)
    private long[] droppedHeads; // per layer: bit h set when KV head h's rows were dropped (zeroed); null when none
    private int maskedKvHeads; // KV heads the masks count (0 while none is dropped)

    /**
     * @param id block id, unique within its session, increasing with {@code firstSeq}
     * @param firstSeq sequence index (0-based count of tokens the session had ingested before) of slot 0
     */
    public KvBlock(long id, long firstSeq, int capacity, Buf[] keys, Buf[] values) {
        if (keys.length != values.length || keys.length == 0) {
            throw new IllegalArgumentException("need one key and one value buffer per layer");
        }
        this.id = id;
        this.firstSeq = firstSeq;
        this.capacity = capacity;
        this.keys = keys;
        this.values = values;
        this.positions = new int[capacity];
        this.tokens = new int[capacity];
        this.sources = new long[capacity];
        this.scores = new float[capacity];
        Arrays.fill(sources, -1L);
        Arrays.fill(scores, Float.NaN);
    }

    public long id() {
        return id;
    }

    public long firstSeq() {
        return firstSeq;
    }

    public int capacity() {
        return capacity;
    }

    /** Tokens written so far. */
    public int length() {
        return length;
    }

    public boolean isFull() {
        return length == capacity;
    }

    /** Key rows of a layer; the layer must be resident (see {@link KvCache#ensureResident}). */
    public Buf keys(int layer) {
        Buf k = keys[layer];
        if (k == null) {
            throw new IllegalStateException("layer %d of %s is offloaded".formatted(layer, this));
        }
        return k;
    }

    /** Value rows of a layer; the layer must be resident. */
    public Buf values(int layer) {
        Buf v = values[layer];
        if (v == null) {
            throw new IllegalStateException("layer %d of %s is offloaded".formatted(layer, this));
        }
        return v;
    }

    /** Whether a layer's K/V rows are held on the backend. */
    public boolean isResident(int layer) {
        return keys[layer] != null;
    }

    /** Layers held on the backend. */
    public int residentLayers() {
        int n = 0;
        for (Buf k : keys) {
            if (k != null) {
                n++;
            }
        }
        return n;
    }

    /** Drops a layer's backend buffers (the caller keeps a copy elsewhere). */
    void dropLayer(int layer) {
        keys[layer] = null;
        values[layer] = null;
    }

    /** Installs backend buffers for a layer that was offloaded. */
    void installLayer(int layer, Buf k, Buf v) {
        keys[layer] = k;
        values[layer] = v;
    }

    /**
     * KV heads of a layer whose K/V rows this block no longer holds (bit {@code h} for head {@code h}; their rows read
     * as zeros): DuoAttention's streaming heads once the block is behind their sinks and recent window, where they
     * never attend again. Stored blocks leave those rows out.
     */
    public long droppedHeads(int layer) {
        return droppedHeads == null ? 0L : droppedHeads[layer];
    }

    /**
     * Whether every KV head of a layer was dropped: the layer keeps no rows, and the cache holds no buffers for it
     * (never brought back: {@link KvCache#ensureResident} leaves it out, {@link KvCache#readKey} reads zeros).
     */
    public boolean vacant(int layer) {
        return maskedKvHeads > 0 && Long.bitCount(droppedHeads[layer]) == maskedKvHeads;
    }

    /** KV heads per layer the {@link #droppedHeads} masks count; 0 when no head was dropped. */
    public int maskedKvHeads() {
        return maskedKvHeads;
    }

    /**
     * Records dropped heads of a layer (the cache zeroes their rows, {@link KvCache#dropHeads}; a decoder restores what
     * a stored block left out). Rotated copies of the keys are rebuilt: the generation changes.
     */
    public void markDroppedHeads(int layer, long mask, int kvHeads) {
        if (kvHeads < 1 || kvHeads > Long.SIZE || (kvHeads < Long.SIZE && (mask >>> kvHeads) != 0)) {
            throw new IllegalArgumentException("head mask %x does not fit %d KV heads".formatted(mask, kvHeads));
        }
        if (maskedKvHeads != 0 && maskedKvHeads != kvHeads) {
            throw new IllegalArgumentException("%s counts %d KV heads, not %d".formatted(this, maskedKvHeads, kvHeads));
        }
        if (droppedHeads == null) {
            droppedHeads = new long[keys.length];
        }
        maskedKvHeads = kvHeads;
        droppedHeads[layer] |= mask;
        generation++;
    }

    /** Takes {@code other}'s dropped-head masks (a block overwritten with its stored form). */
    void copyDroppedHeads(KvBlock other) {
        droppedHeads = other.droppedHeads == null ? null : other.droppedHeads.clone();
        maskedKvHeads = other.maskedKvHeads;
        generation++;
    }

    /** Score of a token (its surprise {@code -log p(token | earlier tokens)}), NaN when not computed. */
    public float score(int slot) {
        return scores[slot];
    }

    public void setScore(int slot, float score) {
        scores[slot] = score;
    }

    public int layers() {
        return keys.length;
    }

    public int position(int slot) {
        return positions[slot];
    }

    public int token(int slot) {
        return tokens[slot];
    }

    public long source(int slot) {
        return sources[slot];
    }

    /**
     * Changes whenever slots below {@link #length()} may have been rewritten ({@link #truncate}, {@link #restore}); caches
     * derived from the block's keys (rotated copies) must be rebuilt when it changes. Appends do not change it.
     */
    public int generation() {
        return generation;
    }

    /** Sequence index of a slot. */
    public long seq(int slot) {
        return firstSeq + slot;
    }

    /**
     * Reserves the next {@code n} slots for tokens at the given positions; the caller then writes their K/V rows into
     * every layer's buffers at slot {@code length()-n ..}.
     *
     * @return the first reserved slot
     */
    public int append(int[] tokenIds, int[] tokenPositions, long[] tokenSources, int from, int n) {
        if (length + n > capacity) {
            throw new IllegalStateException(
                    "block %d has %d of %d slots used; cannot add %d".formatted(id, length, capacity, n));
        }
        int slot = length;
        System.arraycopy(tokenIds, from, tokens, slot, n);
        System.arraycopy(tokenPositions, from, positions, slot, n);
        if (tokenSources != null) {
            System.arraycopy(tokenSources, from, sources, slot, n);
        }
        length += n;
        return slot;
    }

    /** Restores metadata of a block read back from storage; K/V buffers are filled by the caller. */
    public void restore(int len, int[] tokenIds, int[] tokenPositions, long[] tokenSources) {
        if (len > capacity) {
            throw new IllegalArgumentException("length %d exceeds capacity %d".formatted(len, capacity));
        }
        System.arraycopy(tokenIds, 0, tokens, 0, len);
        System.arraycopy(tokenPositions, 0, positions, 0, len);
        System.arraycopy(tokenSources, 0, sources, 0, len);
        Arrays.fill(scores, Float.NaN);
        length = len;
        generation++;
    }

    /** Forgets slots from {@code len} on (their K/V rows are overwritten by later appends). */
    public void truncate(int len) {
        if (len < 0 || len > length) {
            throw new IllegalArgumentException("cannot truncate %s to %d".formatted(this, len));
        }
        Arrays.fill(sources, len, length, -1L);
        Arrays.fill(scores, len, length, Float.NaN);
        length = len;
        generation++;
    }

    @Override
    public String toString() {
        return "KvBlock[id=%d, seq=%d.., %d/%d]".formatted(id, firstSeq, length, capacity);
    }
}
