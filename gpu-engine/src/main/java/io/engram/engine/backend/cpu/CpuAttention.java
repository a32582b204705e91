package io.engram.engine.backend.cpu;

import io.engram.engine.backend.Backend.AttentionShape;
import io.engram.engine.backend.BackendException;
import io.engram.engine.backend.HostBuf;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.tensor.Buf;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.concurrent.ConcurrentSkipListMap;

/**
 * The CPU backend's attention op. Keys are read transposed per KV head: for head g and dimension d, the keys of a span
 * lie next to each other, so a query scores a vector of keys by multiply-adding broadcast query elements, with no lane
 * sum per key (a per-key dot product of 64 dimensions spent as long summing its lanes as multiplying). Values stay as
 * stored and are summed into accumulators that stay in registers across the keys.
 *
 * <p>Every score is {@code fma} over d = 0, 1, ... in order, then times the scale; every output dimension is {@code fma}
 * over the keys in plan order: a query's result depends neither on how many queries share the call nor on the thread
 * count.
 */
final class CpuAttention {
    /** Queries whose rows one task takes together (with every query head of one KV head). */
    private static final int QUERIES = 2;

    /** Runs {@code body} over {@code [0, count)}, split over the backend's threads when {@code work} is large. */
    @FunctionalInterface
    interface Parallel {
        void range(int count, long work, CpuBackend.RangeBody body);
    }

    /**
     * Keys of one span ready for scoring: dimension d of head g of slot {@code from + j} at {@code kT[(g * hd + d) *
     * stride + base + j]}, rotated to the plan's positions less {@code shift}; its value row at {@code v[(vBase + j) *
     * kvDim + g * hd]}. A query scores them rotated to its own position less {@code shift}: RoPE scores depend on the
     * distance only, so a span whose positions move with every step (a window re-indexed from its start) keeps keys
     * rotated once, in the block's own frame, and the query moves instead.
     */
    private record Segment(
            float[] kT, int base, int stride, float[] v, int vBase, int length, KvBlock block, int from, int shift) {}

    /** Transposed keys of one block and layer (capacity slots per row), valid for slots below {@code valid}. */
    private static final class Transposed {
        final float[] data;
        final int stride;
        final int generation;
        int valid;

        Transposed(int capacity, int kvDim, int generation) {
            this.data = new float[capacity * kvDim];
            this.stride = capacity;
            this.generation = generation;
        }
    }

    private final Parallel parallel;
    /**
     * Per (block, layer) key buffer: keys rotated to their stored positions, and keys as stored (position 0, where
     * RoPE is the identity: retrieved memory units). A decode step transposes only the new token's key. Entries go when
     * their block is no longer referenced.
     */
    private final Map<Buf, Transposed> rotated = Collections.synchronizedMap(new WeakHashMap<>());

    private final Map<Buf, Transposed> unrotated = Collections.synchronizedMap(new WeakHashMap<>());

    /**
     * Keys rotated to the block's own frame for re-indexed spans: slot j at the stored position of slot 0 plus j (the
     * positions the block was written at, where they run on, so a span re-indexed to them scores exactly as stored).
     */
    private final Map<Buf, Transposed> slotted = Collections.synchronizedMap(new WeakHashMap<>());

    CpuAttention(Parallel parallel) {
        this.parallel = parallel;
    }

    void run(
            int layer,
            Buf q,
            int n,
            long[] qSeq,
            AttentionPlan plan,
            RopeTable rope,
            AttentionShape shape,
            float scale,
            Buf out) {
        float[] qa = HostBuf.of(q);
        float[] o = HostBuf.of(out);
        int hd = shape.headDim();
        int kvDim = shape.kvDim();
        int kvHeads = shape.kvHeads();
        int group = shape.heads() / kvHeads;
        // 1. transposed keys for every span (once, shared by the KV heads that attend to it)
        Map<KvSpan, Segment> prepared = new HashMap<>();
        Segment[][] segs = new Segment[kvHeads][];
        int[] totals = new int[kvHeads];
        float[] cs = new float[hd / 2];
        float[] sn = new float[hd / 2];
        float[] row = new float[kvDim];
        for (int g = 0; g < kvHeads; g++) {
            List<KvSpan> spans = plan.spans(g);
            segs[g] = new Segment[spans.size()];
            for (int si = 0; si < spans.size(); si++) {
                KvSpan s = spans.get(si);
                segs[g][si] = prepared.computeIfAbsent(s, x -> prepare(x, layer, rope, kvDim, hd, cs, sn, row));
                totals[g] += s.length();
            }
        }
        // 2. per (pair of queries, KV head): the rows (query, head) of that KV head's query heads, two rows at a time
        // sharing each key and value loaded; per row: scores, softmax, weighted values, attention mass when observed
        float[][] mass = plan.observer() == null ? null : new float[kvHeads][];
        // partial masses per task, merged in range order afterwards so the float sums do not depend on scheduling
        ConcurrentSkipListMap<Integer, float[][]> partial = new ConcurrentSkipListMap<>();
        if (mass != null) {
            for (int g = 0; g < kvHeads; g++) {
                mass[g] = new float[totals[g]];
            }
        }
        int blocks = (n + QUERIES - 1) / QUERIES;
        int items = blocks * kvHeads;
        long work = 0;
        for (int g = 0; g < kvHeads; g++) {
            work += (long) totals[g] * hd * 2 * n * group;
        }
        int maxRows = QUERIES * group;
        parallel.range(items, work, (w0, w1) -> {
            float[] c = new float[hd / 2];
            float[] sn2 = new float[hd / 2];
            float[][] qh = new float[maxRows][hd];
            float[][] qRaw = new float[maxRows][hd];
            float[][] acc = new float[maxRows][hd];
            float[][] scores = new float[maxRows][];
            int[] rowQuery = new int[maxRows];
            int[] rowHead = new int[maxRows];
            int[] visible = new int[maxRows];
            float[] inv = new float[maxRows];
            float[][] localMass = mass == null ? null : new float[kvHeads][];
            for (int w = w0; w < w1; w++) {
                int g = w % kvHeads;
                int i0 = (w / kvHeads) * QUERIES;
                int rows = 0;
                for (int i = i0; i < Math.min(n, i0 + QUERIES); i++) {
                    for (int h = g * group; h < (g + 1) * group; h++, rows++) {
                        rowQuery[rows] = i;
                        rowHead[rows] = h;
                        System.arraycopy(qa, i * shape.qDim() + h * hd, qRaw[rows], 0, hd);
                    }
                }
                int shift = Integer.MIN_VALUE; // the frame qh is rotated to: none yet
                int total = totals[g];
                for (int r = 0; r < rows; r++) {
                    if (scores[r] == null || scores[r].length < total) {
                        scores[r] = new float[Math.max(total, 16)];
                    }
                }
                int t = 0;
                for (Segment sg : segs[g]) {
                    if (sg.shift != shift) {
                        shift = sg.shift;
                        for (int r = 0; r < rows; r++) {
                            rope.angles(plan.queryPositions()[rowQuery[r]] - shift, c, sn2);
                            System.arraycopy(qRaw[r], 0, qh[r], 0, hd);
                            rope.rotate(qh[r], 0, c, sn2);
                        }
                    }
                    int k0 = g * hd * sg.stride + sg.base;
                    for (int r = 0; r < rows; r++) {
                        // slots of a span hold consecutive sequence numbers: the keys after the query's are a suffix
                        long seen = qSeq[rowQuery[r]] - sg.block.seq(sg.from) + 1;
                        visible[r] = (int) Math.max(0, Math.min(sg.length, seen));
                    }
                    int r = 0;
                    for (; r + 1 < rows; r += 2) {
                        int len = Math.max(visible[r], visible[r + 1]);
                        AttentionKernels.scores2(
                                qh[r], qh[r + 1], hd, sg.kT, k0, sg.stride, len, scale, scores[r], scores[r + 1], t);
                    }
                    if (r < rows) {
                        AttentionKernels.scores(qh[r], hd, sg.kT, k0, sg.stride, visible[r], scale, scores[r], t);
                    }
                    for (r = 0; r < rows; r++) {
                        Arrays.fill(scores[r], t + visible[r], t + sg.length, Float.NEGATIVE_INFINITY);
                    }
                    t += sg.length;
                }
                for (int r = 0; r < rows; r++) {
                    float max = AttentionKernels.max(scores[r], total);
                    if (max == Float.NEGATIVE_INFINITY) {
                        throw new BackendException("attention: query %d (seq %d) of layer %d sees no key"
                                .formatted(rowQuery[r], qSeq[rowQuery[r]], layer));
                    }
                    inv[r] = 1f / AttentionKernels.exponentiate(scores[r], total, max);
                    Arrays.fill(acc[r], 0f);
                }
                t = 0;
                for (Segment sg : segs[g]) {
                    int v0 = sg.vBase * kvDim + g * hd;
                    int r = 0;
                    for (; r + 1 < rows; r += 2) {
                        AttentionKernels.weightedValues2(
                                scores[r],
                                scores[r + 1],
                                t,
                                inv[r],
                                inv[r + 1],
                                sg.v,
                                v0,
                                kvDim,
                                sg.length,
                                hd,
                                acc[r],
                                acc[r + 1]);
                    }
                    if (r < rows) {
                        AttentionKernels.weightedValues(scores[r], t, inv[r], sg.v, v0, kvDim, sg.length, hd, acc[r]);
                    }
                    t += sg.length;
                }
                for (int r = 0; r < rows; r++) {
                    System.arraycopy(acc[r], 0, o, rowQuery[r] * shape.qDim() + rowHead[r] * hd, hd);
                    if (localMass != null) {
                        if (localMass[g] == null) {
                            localMass[g] = new float[total];
                        }
                        Simd.axpy(inv[r], scores[r], 0, localMass[g], 0, total);
                    }
                }
            }
            if (localMass != null) {
                partial.put(w0, localMass);
            }
        });
        if (mass != null) {
            for (float[][] localMass : partial.values()) {
                for (int g = 0; g < kvHeads; g++) {
                    if (localMass[g] != null) {
                        Simd.addInPlace(mass[g], 0, localMass[g], 0, localMass[g].length);
                    }
                }
            }
            for (int g = 0; g < kvHeads; g++) {
                int off = 0;
                for (KvSpan s : plan.spans(g)) {
                    plan.observer().observe(layer, g, s, mass[g], off);
                    off += s.length();
                }
            }
        }
    }

    /**
     * Transposed keys of a span, from the per-block caches: rotated to their stored positions ({@code STORED}), as
     * stored ({@code FIXED}: every key at one position, the query moved by it) or to the block's frame ({@code
     * CONTIGUOUS}: the query moved by the span's offset from it).
     */
    private Segment prepare(
            KvSpan s, int layer, RopeTable rope, int kvDim, int hd, float[] cs, float[] sn, float[] row) {
        KvBlock b = s.block();
        float[] raw = HostBuf.of(b.keys(layer));
        float[] vals = HostBuf.of(b.values(layer));
        int heads = kvDim / hd;
        KvSpan.Positions kind = s.positions();
        Map<Buf, Transposed> cache = switch (kind) {
            case STORED -> rotated;
            case FIXED -> unrotated;
            case CONTIGUOUS -> slotted;
        };
        Transposed tr = cache.get(b.keys(layer));
        if (tr == null || tr.generation != b.generation()) {
            tr = new Transposed(b.capacity(), kvDim, b.generation());
            cache.put(b.keys(layer), tr);
        }
        for (int slot = tr.valid; slot < b.length(); slot++) {
            System.arraycopy(raw, slot * kvDim, row, 0, kvDim);
            if (kind != KvSpan.Positions.FIXED) {
                rope.angles(kind == KvSpan.Positions.STORED ? b.position(slot) : b.position(0) + slot, cs, sn);
                for (int g = 0; g < heads; g++) {
                    rope.rotate(row, g * hd, cs, sn);
                }
            }
            scatter(row, kvDim, tr.data, tr.stride, slot);
        }
        tr.valid = Math.max(tr.valid, b.length());
        int shift = switch (kind) {
            case STORED -> 0;
            case FIXED -> s.base();
            case CONTIGUOUS -> s.base() - s.from() - b.position(0);
        };
        return new Segment(tr.data, s.from(), tr.stride, vals, s.from(), s.length(), b, s.from(), shift);
    }

    private static void scatter(float[] row, int kvDim, float[] kT, int stride, int slot) {
        for (int e = 0; e < kvDim; e++) {
            kT[e * stride + slot] = row[e];
        }
    }
}
