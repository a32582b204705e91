package io.engram.engine.kv;

import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.BufferSpace;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * One session's working KV cache: a list of {@link KvBlock}s in sequence order, filled token by token. Blocks are
 * allocated on the engine's backend as they are needed. Memory policies may {@link #detach} whole blocks (to offload
 * them to the memory store) and {@link #attach} them again.
 *
 * <p>Not thread-safe: used by one engine thread at a time.
 */
public final class KvCache {
    private final BufferSpace backend;
    private final int layers;
    private final int kvDim;
    private final int blockSize;
    private final List<KvBlock> blocks = new ArrayList<>();
    private long nextSeq;
    private long nextBlockId;
    private UnitStore unitStore = new HostUnitStore();
    private final java.util.Map<Object, PolicyState> policyState = new java.util.HashMap<>();
    private long structureVersion;
    private long transientFrom = -1; // tokens from here on will be truncated away (a question and its answer), or -1
    private float[] carryLogits; // logits of the memory's last token, bfloat16-rounded (scores the next token), or null
    private float[] transientCarry; // the same for the last token of a transient section, or null
    private long offloads;
    private long fetches;
    private final java.util.Set<KvBlock> rewritten = new java.util.LinkedHashSet<>(); // see drainRewritten

    public KvCache(BufferSpace backend, int layers, int kvDim, int blockSize) {
        if (blockSize < 1) {
            throw new IllegalArgumentException("block size must be positive, got " + blockSize);
        }
        this.backend = backend;
        this.layers = layers;
        this.kvDim = kvDim;
        this.blockSize = blockSize;
    }

    public int blockSize() {
        return blockSize;
    }

    public int kvDim() {
        return kvDim;
    }

    public int layers() {
        return layers;
    }

    /** Sequence index the next appended token gets (= tokens ingested so far). */
    /** The id the next new block gets. */
    public long nextBlockId() {
        return nextBlockId;
    }

    public long nextSeq() {
        return nextSeq;
    }

    /** Blocks currently attached, in sequence order. Unmodifiable view. */
    public List<KvBlock> blocks() {
        return Collections.unmodifiableList(blocks);
    }

    /** Tokens held by attached blocks. */
    public long attachedTokens() {
        long n = 0;
        for (KvBlock b : blocks) {
            n += b.length();
        }
        return n;
    }

    /** Floats of K and V one block holds on the backend. */
    public long floatsPerBlock() {
        return 2L * layers * blockSize * kvDim;
    }

    /** Where a run of appended tokens landed: slots {@code [slot, slot+count)} of {@code block} hold chunk rows {@code [row, row+count)}. */
    public record Placement(KvBlock block, int slot, int row, int count) {}

    /**
     * Appends {@code tokens} (with their positions and sources) after the last token, filling the last block and
     * allocating new ones. The caller writes the K/V rows into the returned placements.
     */
    public List<Placement> append(int[] tokens, int[] positions, long[] sources) {
        List<Placement> out = new ArrayList<>();
        int row = 0;
        while (row < tokens.length) {
            KvBlock last = blocks.isEmpty() ? null : blocks.get(blocks.size() - 1);
            if (last == null || last.isFull() || last.firstSeq() + last.length() != nextSeq) {
                last = newBlock(nextSeq);
                blocks.add(last);
            }
            int n = Math.min(tokens.length - row, last.capacity() - last.length());
            int slot = last.append(tokens, positions, sources, row, n);
            out.add(new Placement(last, slot, row, n));
            row += n;
            nextSeq += n;
        }
        return out;
    }

    private KvBlock newBlock(long firstSeq) {
        return allocate(nextBlockId++, firstSeq);
    }

    private KvBlock allocate(long id, long firstSeq) {
        Buf[] k = new Buf[layers];
        Buf[] v = new Buf[layers];
        for (int l = 0; l < layers; l++) {
            k[l] = backend.allocateKv(blockSize * kvDim);
            v[l] = backend.allocateKv(blockSize * kvDim);
        }
        return new KvBlock(id, firstSeq, blockSize, k, v);
    }

    /** Where offloaded layers go; {@link HostUnitStore} unless set. */
    public UnitStore unitStore() {
        return unitStore;
    }

    /** Sets the store offloaded layers go to (before anything is offloaded). */
    public void unitStore(UnitStore store) {
        this.unitStore = java.util.Objects.requireNonNull(store);
    }

    /**
     * Moves one layer of a block out of engine memory into the {@link #unitStore()} (no copy when the store holds the
     * block already): its backend buffers are released and attention cannot read it until {@link #ensureResident}.
     * No-op when already offloaded.
     */
    public void offload(KvBlock block, int layer) {
        if (!block.isResident(layer)) {
            return;
        }
        if (!unitStore.holds(block)) {
            int n = block.length() * kvDim;
            float[] k = new float[n];
            float[] v = new float[n];
            backend.read(block.keys(layer), 0, k, 0, n);
            backend.read(block.values(layer), 0, v, 0, n);
            unitStore.offload(block, layer, k, v);
        }
        block.dropLayer(layer);
        offloads++;
    }

    /** Brings an offloaded layer of a block back onto the backend. No-op when resident. */
    public void ensureResident(KvBlock block, int layer) {
        if (block.isResident(layer) || block.vacant(layer)) {
            return;
        }
        int n = block.length() * kvDim;
        float[] k = new float[n];
        float[] v = new float[n];
        unitStore.fetch(block, layer, k, v);
        Buf kb = backend.allocateKv(blockSize * kvDim);
        Buf vb = backend.allocateKv(blockSize * kvDim);
        backend.write(kb, 0, k, 0, n);
        backend.write(vb, 0, v, 0, n);
        block.installLayer(layer, kb, vb);
        fetches++;
    }

    /**
     * Drops the K/V rows of the KV heads in {@code masks[layer]} (bit {@code h} for KV head {@code h}) of a block: they
     * are zeroed in engine memory and left out when the block is stored; a layer that loses every head releases its
     * buffers ({@link KvBlock#vacant}). For heads that will never attend to the block
     * again (DuoAttention's streaming heads behind their window). Layers out of engine memory are brought back for it and
     * moved out again (all of them: the block's generation changes, and copies kept under the old one are stale). The
     * block is then listed by {@link #drainRewritten} so that it is stored again.
     */
    public void dropHeads(KvBlock block, long[] masks, int kvHeads) {
        if (masks.length != layers || kvDim % kvHeads != 0) {
            throw new IllegalArgumentException("%d head masks of %d KV heads for %d layers of kvDim %d"
                    .formatted(masks.length, kvHeads, layers, kvDim));
        }
        long[] fresh = new long[layers];
        boolean any = false;
        for (int l = 0; l < layers; l++) {
            fresh[l] = masks[l] & ~block.droppedHeads(l);
            any |= fresh[l] != 0;
        }
        if (!any) {
            return;
        }
        boolean[] wasResident = new boolean[layers];
        for (int l = 0; l < layers; l++) {
            wasResident[l] = block.isResident(l);
            ensureResident(block, l);
        }
        unitStore.rewritten(block);
        int headDim = kvDim / kvHeads;
        int n = block.length() * kvDim;
        float[] rows = new float[n];
        for (int l = 0; l < layers; l++) {
            if (fresh[l] == 0) {
                continue;
            }
            block.markDroppedHeads(l, fresh[l], kvHeads);
            if (block.vacant(l)) { // every head dropped: release the layer
                block.dropLayer(l);
                continue;
            }
            for (Buf buf : new Buf[] {block.keys(l), block.values(l)}) {
                backend.read(buf, 0, rows, 0, n);
                for (int slot = 0; slot < block.length(); slot++) {
                    for (int h = 0; h < kvHeads; h++) {
                        if ((fresh[l] >>> h & 1) != 0) {
                            java.util.Arrays.fill(
                                    rows, slot * kvDim + h * headDim, slot * kvDim + (h + 1) * headDim, 0f);
                        }
                    }
                }
                backend.write(buf, 0, rows, 0, n);
            }
        }
        rewritten.add(block);
        for (int l = 0; l < layers; l++) {
            if (!wasResident[l]) {
                offload(block, l);
            }
        }
    }

    /** Releases the buffers of a block's {@link KvBlock#vacant} layers (a decoder that rebuilt every layer of it). */
    public void releaseVacant(KvBlock block) {
        for (int l = 0; l < layers; l++) {
            if (block.vacant(l)) {
                block.dropLayer(l);
            }
        }
    }

    /** Blocks whose stored form changed in place since the last call ({@link #dropHeads}), still attached. */
    public java.util.Set<KvBlock> drainRewritten() {
        java.util.Set<KvBlock> out = new java.util.LinkedHashSet<>();
        for (KvBlock b : rewritten) {
            if (blocks.contains(b)) {
                out.add(b);
            }
        }
        rewritten.clear();
        return out;
    }

    /** Copies the un-rotated key row of {@code slot} of a layer (brought back first when offloaded) into {@code dst[0..kvDim)}. */
    public void readKey(KvBlock block, int layer, int slot, float[] dst) {
        if (block.vacant(layer)) {
            java.util.Arrays.fill(dst, 0, kvDim, 0f);
            return;
        }
        ensureResident(block, layer);
        backend.read(block.keys(layer), slot * kvDim, dst, 0, kvDim);
    }

    /** Bytes of K/V held on the backend by attached blocks (what the memory policy bounds). */
    public long residentBytes() {
        long layersHeld = 0;
        for (KvBlock b : blocks) {
            layersHeld += b.residentLayers();
        }
        return layersHeld * 2L * blockSize * kvDim * Float.BYTES;
    }

    /**
     * Marks the tokens appended from now on as transient: a question and its answer that {@link #truncate} will take
     * back. Policies do not form lasting memory from a transient section. Ends with the truncate back to here.
     */
    public void beginTransient() {
        transientFrom = nextSeq;
    }

    /** The sequence index the transient section starts at, or -1 outside one. */
    public long transientFrom() {
        return transientFrom;
    }

    /** Whether the cache is in a transient section (see {@link #beginTransient}). */
    public boolean isTransient() {
        return transientFrom >= 0;
    }

    /**
     * Keeps the logits the last appended token produced, rounded to bfloat16 (what a restart stores, so a restored
     * session scores its next token exactly as one that never stopped), to score the next token appended. Logits of a
     * transient section's tokens are kept apart: the memory's own carry outlives the question.
     */
    public void carryLogits(float[] logits) {
        if (isTransient()) {
            transientCarry = rounded(logits, transientCarry);
        } else {
            carryLogits = rounded(logits, carryLogits);
        }
    }

    private static float[] rounded(float[] logits, float[] into) {
        float[] out = into == null || into.length != logits.length ? new float[logits.length] : into;
        for (int i = 0; i < logits.length; i++) {
            int bits = Float.floatToRawIntBits(logits[i]);
            out[i] = Float.isNaN(logits[i])
                    ? logits[i]
                    : Float.intBitsToFloat((bits + 0x7FFF + ((bits >>> 16) & 1)) & 0xFFFF0000);
        }
        return out;
    }

    /**
     * Surprise of {@code token} as the next token, {@code -log p(token | everything appended before)}, from the
     * carried logits; NaN when none are carried (first token, after a truncate into the memory, or a restore without
     * {@link #restoreCarriedLogits}).
     */
    public float scoreNext(int token) {
        float[] c = isTransient() && nextSeq > transientFrom ? transientCarry : carryLogits;
        if (c == null || token >= c.length) {
            return Float.NaN;
        }
        return TokenScores.surprise(c, token);
    }

    /** The logits that score the first token after the memory (bfloat16 values), or null: for the durable store. */
    public float[] carriedLogits() {
        return carryLogits == null ? null : carryLogits.clone();
    }

    /** Gives memory read back from storage the logits {@link #carriedLogits} returned for it (null: none). */
    public void restoreCarriedLogits(float[] logits) {
        carryLogits = logits == null ? null : rounded(logits, null);
    }

    /** Layers offloaded and fetched back since the cache was created (for reports). */
    public long offloads() {
        return offloads;
    }

    public long fetches() {
        return fetches;
    }

    /**
     * Per-session state of a memory policy (scores, representative keys, retained sets), created on first use and
     * dropped by {@link #clear}. Keyed by the policy instance so composed policies keep theirs apart.
     */
    @SuppressWarnings("unchecked")
    public <T extends PolicyState> T policyState(Object owner, java.util.function.Supplier<T> create) {
        return (T) policyState.computeIfAbsent(owner, o -> create.get());
    }

    /** The policy states of this session, to carry over to a cache rebuilt for it (see {@link #adoptPolicyStates}). */
    public java.util.Map<Object, PolicyState> policyStates() {
        return java.util.Collections.unmodifiableMap(policyState);
    }

    /**
     * Takes over policy states kept from an earlier cache of the same session at the same {@link #nextSeq()}.
     * Policies repair references to blocks that are no longer attached.
     */
    public void adoptPolicyStates(java.util.Map<Object, PolicyState> states) {
        policyState.putAll(states);
    }

    /**
     * Index in {@link #blocks()} of the first attached block whose slots reach past {@code seq} (its first sequence index
     * plus capacity is above it); {@code blocks().size()} when none. Lets policies visit only the blocks of a range.
     */
    public int firstBlockEndingAfter(long seq) {
        int lo = 0;
        int hi = blocks.size();
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            KvBlock b = blocks.get(mid);
            if (b.firstSeq() + b.capacity() <= seq) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** Changes whenever blocks are attached, detached or removed (not when they fill): caches of block lookups key on it. */
    public long structureVersion() {
        return structureVersion;
    }

    /** The attached block holding sequence index {@code seq} among its filled slots, or null (never ingested, or dropped). */
    public KvBlock blockAt(long seq) {
        int lo = 0;
        int hi = blocks.size() - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            KvBlock b = blocks.get(mid);
            if (seq < b.firstSeq()) {
                hi = mid - 1;
            } else if (seq >= b.firstSeq() + b.capacity()) {
                lo = mid + 1;
            } else {
                return seq < b.firstSeq() + b.length() ? b : null;
            }
        }
        return null;
    }

    /**
     * Makes an attached block hold exactly what {@code stored} holds (its form as stored, e.g. values rounded to BF16),
     * in place: tokens, positions, sources, scores and every layer's K/V rows. Keys derived from the old values (rotated
     * copies) are rebuilt, as after a restore.
     */
    public void overwrite(KvBlock block, KvBlock stored) {
        if (block.id() != stored.id()
                || block.firstSeq() != stored.firstSeq()
                || block.length() != stored.length()
                || block.capacity() != stored.capacity()) {
            throw new IllegalArgumentException("cannot overwrite %s with %s".formatted(block, stored));
        }
        int len = stored.length();
        for (int l = 0; l < layers; l++) {
            if (stored.vacant(l)) {
                block.dropLayer(l); // no rows kept: nothing to copy, no buffers held
                continue;
            }
            ensureResident(block, l);
            backend.copyRows(stored.keys(l), 0, block.keys(l), 0, len, kvDim);
            backend.copyRows(stored.values(l), 0, block.values(l), 0, len, kvDim);
        }
        int[] tokens = new int[len];
        int[] positions = new int[len];
        long[] sources = new long[len];
        for (int i = 0; i < len; i++) {
            tokens[i] = stored.token(i);
            positions[i] = stored.position(i);
            sources[i] = stored.source(i);
        }
        block.restore(len, tokens, positions, sources);
        block.copyDroppedHeads(stored);
        for (int i = 0; i < len; i++) {
            block.setScore(i, stored.score(i));
        }
    }

    /** Removes a block from the working set (its buffers stay valid for the caller). */
    public void detach(KvBlock block) {
        if (!blocks.remove(block)) {
            throw new IllegalArgumentException(block + " is not attached");
        }
        structureVersion++;
    }

    /** Puts a block back in sequence order; later blocks get ids above it. */
    public void attach(KvBlock block) {
        nextBlockId = Math.max(nextBlockId, block.id() + 1);
        int i = 0;
        while (i < blocks.size() && blocks.get(i).firstSeq() < block.firstSeq()) {
            i++;
        }
        blocks.add(i, block);
        structureVersion++;
    }

    /** Allocates an empty block for restoring stored data (ids and sequence come from the store). */
    public KvBlock allocateForRestore(long id, long firstSeq) {
        nextBlockId = Math.max(nextBlockId, id + 1);
        return allocate(id, firstSeq);
    }

    /**
     * A block for restoring stored data whose layers stay in the {@link #unitStore()} until a step needs them (no
     * backend buffers): the store must hold its contents ({@link UnitStore#holds}, or a fetch from it).
     */
    public KvBlock allocateOffloaded(long id, long firstSeq) {
        nextBlockId = Math.max(nextBlockId, id + 1);
        return new KvBlock(id, firstSeq, blockSize, new Buf[layers], new Buf[layers]);
    }

    /** Keeps {@code id} from being given to a new block (a stored block that was left out keeps its id). */
    public void skipBlockId(long id) {
        nextBlockId = Math.max(nextBlockId, id + 1);
    }

    /** Sets where the next token goes after a restore. */
    public void resumeAt(long seq) {
        this.nextSeq = seq;
    }

    /**
     * Forgets every token with sequence index {@code seq} or later (e.g. a query and its answer that must not stay in
     * memory); the next append continues at {@code seq}, and the ids of the blocks dropped are given out again, so the
     * memory is the one it was before those tokens, block ids included (as a reload of the stored memory would be).
     */
    public void truncate(long seq) {
        if (seq < 0 || seq > nextSeq) {
            throw new IllegalArgumentException("cannot truncate to %d: the cache ends at %d".formatted(seq, nextSeq));
        }
        for (int i = blocks.size() - 1; i >= 0; i--) {
            KvBlock b = blocks.get(i);
            if (b.firstSeq() >= seq) {
                nextBlockId = Math.min(nextBlockId, b.id()); // the tail's blocks were the last allocated
                blocks.remove(i);
                unitStore.forget(b);
                structureVersion++;
            } else if (b.firstSeq() + b.length() > seq) {
                for (int l = 0; l < layers; l++) {
                    ensureResident(b, l); // the new tail block is appended to next: it must be in engine memory
                }
                b.truncate((int) (seq - b.firstSeq()));
            }
        }
        if (seq != nextSeq && (transientFrom < 0 || seq < transientFrom)) {
            carryLogits = null; // the memory itself was cut
        }
        if (seq != nextSeq) {
            transientCarry = null;
        }
        if (transientFrom >= 0 && seq <= transientFrom) {
            transientFrom = -1;
        }
        nextSeq = seq;
    }

    /** Drops every block and starts over at sequence 0. */
    public void clear() {
        for (KvBlock b : blocks) {
            unitStore.forget(b);
        }
        blocks.clear();
        rewritten.clear();
        structureVersion++;
        policyState.clear();
        carryLogits = null;
        transientCarry = null;
        transientFrom = -1;
        nextSeq = 0;
        nextBlockId = 0;
    }
}
