package io.engram.engine.backend.cpu;

import io.engram.engine.backend.BackendException;
import io.engram.engine.backend.BoundWeight;
import io.engram.engine.backend.HostBuf;
import io.engram.engine.backend.HostMemoryBackend;
import io.engram.engine.backend.HostWeight;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.concurrent.ConcurrentSkipListMap;

/**
 * The multi-threaded host backend. Matmuls split output rows over a {@link WorkerTeam} of {@code threads} (the
 * caller and persistent workers); dot products use the Vector API ({@link Simd}); quantized and half-precision rows are decoded into a
 * per-task scratch row and reused across the tokens of a prefill chunk, so weights stay in their storage type; a
 * decode step reads Q8_0 rows in place (fused dots). F32, F16 and BF16 matrices are repacked at {@link #bind} into
 * {@link Panels} (column-major groups of rows, no lane sums in the kernel). Checked
 * op by op against {@link io.engram.engine.backend.reference.ReferenceBackend} by {@code BackendParityTest}.
 *
 * <p>With {@code quantizeQ8} set, F32/F16/BF16 matrices are requantized to Q8_0 at {@link #bind} (per-32 scales), in
 * off-heap memory owned by this backend.
 */
public final class CpuBackend extends HostMemoryBackend {
    /** Below this many multiply-adds an op runs on the caller thread: forking costs more than it saves. */
    private static final long PARALLEL_THRESHOLD = 1L << 15;
    /**
     * Up to this many tokens a Q8_0 matmul reads each row in place (fused int8 dot); beyond, decoding the row once and
     * reusing it for every token is cheaper.
     */
    private static final int FUSED_MAX_TOKENS = 4;

    private final int threads;
    private final boolean quantizeQ8;
    private final WorkerTeam team;
    private final Arena arena = Arena.ofShared();

    public CpuBackend(int threads, boolean quantizeQ8) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        this.threads = threads;
        this.quantizeQ8 = quantizeQ8;
        this.team = threads > 1 ? new WorkerTeam(threads) : null;
    }

    public int threads() {
        return threads;
    }

    @Override
    public Kind kind() {
        return Kind.CPU;
    }

    @Override
    public String describe() {
        return "cpu (%d threads, %d-bit vectors%s)"
                .formatted(threads, Simd.BITS, quantizeQ8 ? ", weights requantized to Q8_0" : "");
    }

    /** A weight of this backend: the tensor (read in place by get_rows and the quantized matmul), repacked if float. */
    record CpuWeight(WeightTensor tensor, Panels panels, QuantPanels quantPanels) implements BoundWeight {
        @Override
        public String name() {
            return tensor.name();
        }

        @Override
        public DType dtype() {
            return tensor.dtype();
        }

        @Override
        public int rows() {
            return tensor.rows();
        }

        @Override
        public int cols() {
            return tensor.cols();
        }
    }

    private static WeightTensor tensorOf(BoundWeight w) {
        return w instanceof CpuWeight c ? c.tensor() : HostWeight.of(w);
    }

    @Override
    public BoundWeight bind(WeightTensor t) {
        boolean matrix = t.shape().length == 2 && t.cols() % 32 == 0;
        WeightTensor w = quantizeQ8 && matrix && !t.dtype().isQuantized() ? requantized(t) : t;
        if (Panels.accepts(w)) {
            return new CpuWeight(w, Panels.pack(w), null);
        }
        if (QuantPanels.accepts(w)) {
            return new CpuWeight(w, null, QuantPanels.pack(w));
        }
        return new HostWeight(w);
    }

    /** {@code t} as Q8_0 (per-32 scales), in off-heap memory owned by this backend. */
    private WeightTensor requantized(WeightTensor t) {
        MemorySegment q = arena.allocate(DType.Q8_0.bytesFor(t.elementCount()), 32);
        float[] row = new float[t.cols()];
        long rowBytes = DType.Q8_0.bytesFor(t.cols());
        for (int r = 0; r < t.rows(); r++) {
            Quant.decode(t.dtype(), t.data(), (long) r * t.cols(), row, 0, t.cols());
            Quant.encodeQ8_0(row, 0, t.cols(), q, r * rowBytes);
        }
        return new WeightTensor(t.name(), DType.Q8_0, t.shape(), q);
    }

    @Override
    public void getRows(BoundWeight table, int[] ids, Buf out) {
        WeightTensor t = tensorOf(table);
        float[] o = HostBuf.of(out);
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= t.rows()) {
                throw new BackendException(
                        "get_rows: id %d outside [0, %d) of %s".formatted(ids[i], t.rows(), t.name()));
            }
            Quant.decode(t.dtype(), t.data(), (long) ids[i] * t.cols(), o, i * t.cols(), t.cols());
        }
    }

    @Override
    public void rmsNorm(Buf x, BoundWeight gamma, float eps, int n, int dim, Buf out) {
        float[] a = HostBuf.of(x);
        float[] o = HostBuf.of(out);
        WeightTensor gt = tensorOf(gamma);
        float[] g = new float[dim];
        Quant.decode(gt.dtype(), gt.data(), 0, g, 0, dim);
        for (int i = 0; i < n; i++) {
            float ss = Simd.dot(a, i * dim, a, i * dim, dim);
            float inv = (float) (1.0 / Math.sqrt(ss / dim + eps));
            Simd.scaleMul(a, i * dim, inv, g, o, i * dim, dim);
        }
    }

    @Override
    public void matmul(BoundWeight w, Buf x, int n, Buf out) {
        WeightTensor t = tensorOf(w);
        float[] a = HostBuf.of(x);
        float[] o = HostBuf.of(out);
        int rows = t.rows();
        int cols = t.cols();
        if (a.length < n * cols || o.length < n * rows) {
            throw new BackendException("matmul %s: x holds %d floats, out %d; need %d and %d for n=%d"
                    .formatted(t, a.length, o.length, n * cols, n * rows, n));
        }
        long work = (long) rows * cols * n;
        if (w instanceof CpuWeight c && c.panels() != null) {
            parallelRange(c.panels().groups(), work, (g0, g1) -> c.panels().multiply(g0, g1, a, n, o));
            return;
        }
        if (w instanceof CpuWeight c && c.quantPanels() != null) {
            parallelRange(
                    c.quantPanels().groups(), work, (g0, g1) -> c.quantPanels().multiply(g0, g1, a, n, o));
            return;
        }
        boolean fused = t.dtype() == DType.Q8_0 && n <= FUSED_MAX_TOKENS;
        int blocks = (rows + Gemm.ROWS - 1) / Gemm.ROWS;
        parallelRange(blocks, work, (b0, b1) -> {
            float[] w4 = fused ? null : new float[Gemm.ROWS * cols];
            for (int b = b0; b < b1; b++) {
                int r = b * Gemm.ROWS;
                int rb = Math.min(Gemm.ROWS, rows - r);
                if (fused) {
                    for (int j = 0; j < rb; j++) {
                        long off = (r + j) * t.rowBytes();
                        for (int i = 0; i < n; i++) {
                            o[i * rows + r + j] = Simd.dotQ8_0(t.data(), off, a, i * cols, cols);
                        }
                    }
                    continue;
                }
                // the block's rows as floats (a copy for F32, a decode otherwise), then every token in register tiles
                Quant.decode(t.dtype(), t.data(), (long) r * cols, w4, 0, rb * cols);
                Gemm.rows(w4, rb, cols, a, n, o, rows, r);
            }
        });
    }

    @Override
    public void addBias(Buf x, BoundWeight bias, int n) {
        WeightTensor bt = tensorOf(bias);
        float[] b = new float[bt.cols()];
        Quant.decode(bt.dtype(), bt.data(), 0, b, 0, b.length);
        float[] a = HostBuf.of(x);
        for (int i = 0; i < n; i++) {
            Simd.addInPlace(a, i * b.length, b, 0, b.length);
        }
    }

    @Override
    public void add(Buf acc, Buf x, int len) {
        Simd.addInPlace(HostBuf.of(acc), 0, HostBuf.of(x), 0, len);
    }

    @Override
    public void swiglu(Buf gate, Buf up, int len, Buf out) {
        float[] g = HostBuf.of(gate);
        float[] u = HostBuf.of(up);
        float[] o = HostBuf.of(out);
        for (int i = 0; i < len; i++) {
            float v = g[i];
            o[i] = v / (1f + (float) Math.exp(-v)) * u[i];
        }
    }

    /**
     * Keys of one span ready for scoring: rotated rows at {@code k[(base + j) * kvDim + g * hd]} and value rows at
     * {@code v[(vBase + j) * kvDim + g * hd]} for slot {@code from + j}, any KV head g.
     */
    private record Segment(float[] k, int base, float[] v, int vBase, int length, KvBlock block, int from) {}

    /** Rotated keys of one block and layer at their stored positions, valid for slots below {@code valid}. */
    private static final class Rotated {
        final float[] data;
        int valid;
        int generation;

        Rotated(int floats, int generation) {
            this.data = new float[floats];
            this.generation = generation;
        }
    }

    /**
     * Rotated copies of stored keys, per (block, layer) key buffer: a decode step rotates only the new token's key
     * instead of every key in memory. Entries go when their block is no longer referenced.
     */
    private final Map<Buf, Rotated> rotatedKeys = Collections.synchronizedMap(new WeakHashMap<>());

    @Override
    public void attention(
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
        // 1. rotated keys for every span (once, shared by the KV heads that attend to it)
        Map<KvSpan, Segment> prepared = new HashMap<>();
        Segment[][] segs = new Segment[kvHeads][];
        int[] totals = new int[kvHeads];
        float[] cs = new float[hd / 2];
        float[] sn = new float[hd / 2];
        for (int g = 0; g < kvHeads; g++) {
            List<KvSpan> spans = plan.spans(g);
            segs[g] = new Segment[spans.size()];
            for (int si = 0; si < spans.size(); si++) {
                KvSpan s = spans.get(si);
                segs[g][si] = prepared.computeIfAbsent(s, x -> prepare(x, layer, rope, kvDim, hd, cs, sn));
                totals[g] += s.length();
            }
        }
        // 2. per (query, head): scores, softmax, weighted values; attention mass per key when observed
        float[][] mass = plan.observer() == null ? null : new float[kvHeads][];
        // partial masses per task, merged in range order afterwards so the float sums do not depend on scheduling
        ConcurrentSkipListMap<Integer, float[][]> partial = new ConcurrentSkipListMap<>();
        if (mass != null) {
            for (int g = 0; g < kvHeads; g++) {
                mass[g] = new float[totals[g]];
            }
        }
        int items = n * shape.heads();
        long work = 0;
        for (int g = 0; g < kvHeads; g++) {
            work += (long) totals[g] * hd * 2 * n * group;
        }
        parallelRange(items, work, (w0, w1) -> {
            float[] c = new float[hd / 2];
            float[] sn2 = new float[hd / 2];
            float[] qh = new float[hd];
            float[] acc = new float[hd];
            float[] scores = null;
            float[][] localMass = mass == null ? null : new float[kvHeads][];
            for (int w = w0; w < w1; w++) {
                int i = w / shape.heads();
                int h = w % shape.heads();
                int g = h / group;
                int total = totals[g];
                if (scores == null || scores.length < total) {
                    scores = new float[Math.max(total, 16)];
                }
                System.arraycopy(qa, i * shape.qDim() + h * hd, qh, 0, hd);
                rope.angles(plan.queryPositions()[i], c, sn2);
                rope.rotate(qh, 0, c, sn2);
                float max = Float.NEGATIVE_INFINITY;
                int t = 0;
                for (Segment sg : segs[g]) {
                    long seq0 = sg.block.seq(sg.from);
                    for (int j = 0; j < sg.length; j++, t++) {
                        if (seq0 + j > qSeq[i]) {
                            scores[t] = Float.NEGATIVE_INFINITY;
                            continue;
                        }
                        float sc = Simd.dot(qh, 0, sg.k, (sg.base + j) * kvDim + g * hd, hd) * scale;
                        scores[t] = sc;
                        if (sc > max) {
                            max = sc;
                        }
                    }
                }
                if (max == Float.NEGATIVE_INFINITY) {
                    throw new BackendException(
                            "attention: query %d (seq %d) of layer %d sees no key".formatted(i, qSeq[i], layer));
                }
                float sum = 0;
                for (t = 0; t < total; t++) {
                    float e = scores[t] == Float.NEGATIVE_INFINITY ? 0f : Simd.expNonPositive(scores[t] - max);
                    scores[t] = e;
                    sum += e;
                }
                Arrays.fill(acc, 0f);
                float inv = 1f / sum;
                t = 0;
                for (Segment sg : segs[g]) {
                    for (int j = 0; j < sg.length; j++, t++) {
                        if (scores[t] != 0f) {
                            Simd.axpy(scores[t] * inv, sg.v, (sg.vBase + j) * kvDim + g * hd, acc, 0, hd);
                        }
                    }
                }
                System.arraycopy(acc, 0, o, i * shape.qDim() + h * hd, hd);
                if (localMass != null) {
                    if (localMass[g] == null) {
                        localMass[g] = new float[total];
                    }
                    Simd.axpy(inv, scores, 0, localMass[g], 0, total);
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

    /** Rotated keys of a span: from the per-block cache for stored positions, freshly rotated otherwise. */
    private Segment prepare(KvSpan s, int layer, RopeTable rope, int kvDim, int hd, float[] cs, float[] sn) {
        KvBlock b = s.block();
        float[] raw = HostBuf.of(b.keys(layer));
        float[] vals = HostBuf.of(b.values(layer));
        int heads = kvDim / hd;
        if (s.positions() == KvSpan.Positions.STORED) {
            Rotated r = rotatedKeys.get(b.keys(layer));
            if (r == null || r.generation != b.generation()) {
                r = new Rotated(b.capacity() * kvDim, b.generation());
                rotatedKeys.put(b.keys(layer), r);
            }
            for (int slot = r.valid; slot < b.length(); slot++) {
                System.arraycopy(raw, slot * kvDim, r.data, slot * kvDim, kvDim);
                rope.angles(b.position(slot), cs, sn);
                for (int g = 0; g < heads; g++) {
                    rope.rotate(r.data, slot * kvDim + g * hd, cs, sn);
                }
            }
            r.valid = Math.max(r.valid, b.length());
            return new Segment(r.data, s.from(), vals, s.from(), s.length(), b, s.from());
        }
        if (s.positions() == KvSpan.Positions.FIXED && s.base() == 0) {
            // every key at position 0: RoPE is the identity there (cos 1, sin 0), the raw keys are the rotated keys
            return new Segment(raw, s.from(), vals, s.from(), s.length(), b, s.from());
        }
        float[] k = new float[s.length() * kvDim];
        for (int j = 0; j < s.length(); j++) {
            System.arraycopy(raw, (s.from() + j) * kvDim, k, j * kvDim, kvDim);
            rope.angles(s.positionOf(s.from() + j), cs, sn);
            for (int g = 0; g < heads; g++) {
                rope.rotate(k, j * kvDim + g * hd, cs, sn);
            }
        }
        return new Segment(k, 0, vals, s.from(), s.length(), b, s.from());
    }

    /** A half-open index range worked on by one task. */
    @FunctionalInterface
    interface RangeBody {
        void run(int from, int to);
    }

    private void parallelRange(int count, long work, RangeBody body) {
        if (team == null || work < PARALLEL_THRESHOLD || count < 2) {
            body.run(0, count);
            return;
        }
        team.run(count, threads * 4, body);
    }

    @Override
    public void close() {
        if (team != null) {
            team.close();
        }
        arena.close();
    }
}
