package io.engram.engine.backend.cpu;

import io.engram.engine.backend.Backend;
import io.engram.engine.backend.BackendException;
import io.engram.engine.backend.BoundWeight;
import io.engram.engine.backend.Buf;
import io.engram.engine.backend.HostBuf;
import io.engram.engine.backend.HostWeight;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;

/**
 * The multi-threaded host backend. Matmuls split output rows over a private fork-join pool of {@code threads}
 * workers; dot products use the Vector API ({@link Simd}); quantized and half-precision rows are decoded into a
 * per-task scratch row and reused across the tokens of a prefill chunk, so weights stay in their storage type. Checked
 * op by op against {@link io.engram.engine.backend.reference.ReferenceBackend} by {@code BackendParityTest}.
 *
 * <p>With {@code quantizeQ8} set, F32/F16/BF16 matrices are requantized to Q8_0 at {@link #bind} (per-32 scales), in
 * off-heap memory owned by this backend.
 */
public final class CpuBackend implements Backend {
    /** Below this many multiply-adds an op runs on the caller thread: forking costs more than it saves. */
    private static final long PARALLEL_THRESHOLD = 1L << 15;

    private final int threads;
    private final boolean quantizeQ8;
    private final ForkJoinPool pool;
    private final Arena arena = Arena.ofShared();

    public CpuBackend(int threads, boolean quantizeQ8) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        this.threads = threads;
        this.quantizeQ8 = quantizeQ8;
        this.pool = threads > 1 ? new ForkJoinPool(threads) : null;
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
        return "cpu (%d threads, %d-bit vectors%s)".formatted(threads, Simd.BITS, quantizeQ8 ? ", weights requantized to Q8_0" : "");
    }

    @Override
    public Buf allocate(int floats) {
        return new HostBuf(floats);
    }

    @Override
    public void write(Buf dst, int dstOff, float[] src, int srcOff, int len) {
        System.arraycopy(src, srcOff, HostBuf.of(dst), dstOff, len);
    }

    @Override
    public void read(Buf src, int srcOff, float[] dst, int dstOff, int len) {
        System.arraycopy(HostBuf.of(src), srcOff, dst, dstOff, len);
    }

    @Override
    public BoundWeight bind(WeightTensor t) {
        boolean matrix = t.shape().length == 2 && t.cols() % 32 == 0;
        if (!quantizeQ8 || !matrix || t.dtype().isQuantized()) {
            return new HostWeight(t);
        }
        MemorySegment q = arena.allocate(DType.Q8_0.bytesFor(t.elementCount()), 32);
        float[] row = new float[t.cols()];
        long rowBytes = DType.Q8_0.bytesFor(t.cols());
        for (int r = 0; r < t.rows(); r++) {
            Quant.decode(t.dtype(), t.data(), (long) r * t.cols(), row, 0, t.cols());
            Quant.encodeQ8_0(row, 0, t.cols(), q, r * rowBytes);
        }
        return new HostWeight(new WeightTensor(t.name(), DType.Q8_0, t.shape(), q));
    }

    @Override
    public void getRows(BoundWeight table, int[] ids, Buf out) {
        WeightTensor t = HostWeight.of(table);
        float[] o = HostBuf.of(out);
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= t.rows()) {
                throw new BackendException("get_rows: id %d outside [0, %d) of %s".formatted(ids[i], t.rows(), t.name()));
            }
            Quant.decode(t.dtype(), t.data(), (long) ids[i] * t.cols(), o, i * t.cols(), t.cols());
        }
    }

    @Override
    public void rmsNorm(Buf x, BoundWeight gamma, float eps, int n, int dim, Buf out) {
        float[] a = HostBuf.of(x);
        float[] o = HostBuf.of(out);
        WeightTensor gt = HostWeight.of(gamma);
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
        WeightTensor t = HostWeight.of(w);
        float[] a = HostBuf.of(x);
        float[] o = HostBuf.of(out);
        int rows = t.rows();
        int cols = t.cols();
        if (a.length < n * cols || o.length < n * rows) {
            throw new BackendException("matmul %s: x holds %d floats, out %d; need %d and %d for n=%d"
                    .formatted(t, a.length, o.length, n * cols, n * rows, n));
        }
        long work = (long) rows * cols * n;
        parallelRange(rows, work, (r0, r1) -> {
            float[] scratch = t.dtype() == DType.F32 ? null : new float[cols];
            for (int r = r0; r < r1; r++) {
                if (t.dtype() == DType.F32) {
                    long off = (long) r * cols * 4;
                    for (int i = 0; i < n; i++) {
                        o[i * rows + r] = Simd.dot(t.data(), off, a, i * cols, cols);
                    }
                } else {
                    Quant.decode(t.dtype(), t.data(), (long) r * cols, scratch, 0, cols);
                    for (int i = 0; i < n; i++) {
                        o[i * rows + r] = Simd.dot(scratch, 0, a, i * cols, cols);
                    }
                }
            }
        });
    }

    @Override
    public void addBias(Buf x, BoundWeight bias, int n) {
        WeightTensor bt = HostWeight.of(bias);
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

    @Override
    public void copyRows(Buf src, int srcRow, Buf dst, int dstRow, int rows, int rowLen) {
        System.arraycopy(HostBuf.of(src), srcRow * rowLen, HostBuf.of(dst), dstRow * rowLen, rows * rowLen);
    }

    @Override
    public void attention(int layer, Buf q, int n, long[] qSeq, AttentionPlan plan, RopeTable rope, AttentionShape shape,
            float scale, Buf out) {
        float[] qa = HostBuf.of(q);
        float[] o = HostBuf.of(out);
        int hd = shape.headDim();
        int kvHeads = shape.kvHeads();
        int group = shape.heads() / kvHeads;
        // 1. rotate every attended key once per KV head: (kvHeads)[T_g, hd], with its sequence index
        float[][] keys = new float[kvHeads][];
        float[][] vals = new float[kvHeads][];
        long[][] seqs = new long[kvHeads][];
        long keyWork = 0;
        for (int g = 0; g < kvHeads; g++) {
            for (KvSpan s : plan.spans(g)) {
                keyWork += (long) s.length() * hd;
            }
        }
        parallelRange(kvHeads, keyWork * 8, (g0, g1) -> {
            float[] cs = new float[hd / 2];
            float[] sn = new float[hd / 2];
            for (int g = g0; g < g1; g++) {
                List<KvSpan> spans = plan.spans(g);
                int total = 0;
                for (KvSpan s : spans) {
                    total += s.length();
                }
                float[] k = new float[total * hd];
                float[] v = new float[total * hd];
                long[] sq = new long[total];
                int t = 0;
                for (KvSpan s : spans) {
                    float[] kb = HostBuf.of(s.block().keys(layer));
                    float[] vb = HostBuf.of(s.block().values(layer));
                    int kvDim = shape.kvDim();
                    for (int slot = s.from(); slot < s.to(); slot++, t++) {
                        System.arraycopy(kb, slot * kvDim + g * hd, k, t * hd, hd);
                        System.arraycopy(vb, slot * kvDim + g * hd, v, t * hd, hd);
                        rope.angles(s.positionOf(slot), cs, sn);
                        rope.rotate(k, t * hd, cs, sn);
                        sq[t] = s.block().seq(slot);
                    }
                }
                keys[g] = k;
                vals[g] = v;
                seqs[g] = sq;
            }
        });
        // 2. per (query, head): scores, softmax, weighted values; attention mass per key when observed
        float[][] mass = plan.observer() == null ? null : new float[kvHeads][];
        // partial masses per task, merged in range order afterwards so the float sums do not depend on scheduling
        java.util.concurrent.ConcurrentSkipListMap<Integer, float[][]> partial = new java.util.concurrent.ConcurrentSkipListMap<>();
        if (mass != null) {
            for (int g = 0; g < kvHeads; g++) {
                mass[g] = new float[seqs[g].length];
            }
        }
        int items = n * shape.heads();
        long work = 0;
        for (int g = 0; g < kvHeads; g++) {
            work += (long) seqs[g].length * hd * 2 * n * group;
        }
        parallelRange(items, work, (w0, w1) -> {
            float[] cs = new float[hd / 2];
            float[] sn = new float[hd / 2];
            float[] qh = new float[hd];
            float[] acc = new float[hd];
            float[] scores = null;
            float[][] localMass = mass == null ? null : new float[kvHeads][];
            for (int w = w0; w < w1; w++) {
                int i = w / shape.heads();
                int h = w % shape.heads();
                int g = h / group;
                float[] k = keys[g];
                float[] v = vals[g];
                long[] sq = seqs[g];
                int total = sq.length;
                if (scores == null || scores.length < total) {
                    scores = new float[Math.max(total, 16)];
                }
                System.arraycopy(qa, i * shape.qDim() + h * hd, qh, 0, hd);
                rope.angles(plan.queryPositions()[i], cs, sn);
                rope.rotate(qh, 0, cs, sn);
                float max = Float.NEGATIVE_INFINITY;
                for (int t = 0; t < total; t++) {
                    if (sq[t] > qSeq[i]) {
                        scores[t] = Float.NEGATIVE_INFINITY;
                        continue;
                    }
                    float s = Simd.dot(qh, 0, k, t * hd, hd) * scale;
                    scores[t] = s;
                    if (s > max) {
                        max = s;
                    }
                }
                if (max == Float.NEGATIVE_INFINITY) {
                    throw new BackendException("attention: query %d (seq %d) of layer %d sees no key".formatted(i, qSeq[i], layer));
                }
                float sum = 0;
                for (int t = 0; t < total; t++) {
                    float e = scores[t] == Float.NEGATIVE_INFINITY ? 0f : Simd.expNonPositive(scores[t] - max);
                    scores[t] = e;
                    sum += e;
                }
                java.util.Arrays.fill(acc, 0f);
                float inv = 1f / sum;
                for (int t = 0; t < total; t++) {
                    if (scores[t] != 0f) {
                        Simd.axpy(scores[t] * inv, v, t * hd, acc, 0, hd);
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

    /** A half-open index range worked on by one task. */
    @FunctionalInterface
    interface RangeBody {
        void run(int from, int to);
    }

    private void parallelRange(int count, long work, RangeBody body) {
        if (pool == null || work < PARALLEL_THRESHOLD || count < 2) {
            body.run(0, count);
            return;
        }
        int tasks = Math.min(count, threads * 4);
        pool.invoke(new Split(body, 0, count, Math.max(1, count / tasks)));
    }

    private static final class Split extends RecursiveAction {
        private final RangeBody body;
        private final int from;
        private final int to;
        private final int grain;

        Split(RangeBody body, int from, int to, int grain) {
            this.body = body;
            this.from = from;
            this.to = to;
            this.grain = grain;
        }

        @Override
        protected void compute() {
            if (to - from <= grain) {
                body.run(from, to);
                return;
            }
            int mid = (from + to) >>> 1;
            invokeAll(new Split(body, from, mid, grain), new Split(body, mid, to, grain));
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
        arena.close();
    }
}
