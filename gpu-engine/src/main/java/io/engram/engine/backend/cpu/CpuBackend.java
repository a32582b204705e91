package io.engram.engine.backend.cpu;

import io.engram.engine.backend.BackendException;
import io.engram.engine.backend.BoundWeight;
import io.engram.engine.backend.HostBuf;
import io.engram.engine.backend.HostMemoryBackend;
import io.engram.engine.backend.HostWeight;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;

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
    private final CpuAttention attention;
    private final Arena arena = Arena.ofShared();

    public CpuBackend(int threads, boolean quantizeQ8) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        this.threads = threads;
        this.quantizeQ8 = quantizeQ8;
        this.team = threads > 1 ? new WorkerTeam(threads) : null;
        this.attention = new CpuAttention(this::parallelRange);
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
            parallelRange(c.panels().parts(n), work, (p0, p1) -> c.panels().multiplyParts(p0, p1, a, n, o));
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
        int i = 0;
        for (; i + Simd.F.length() <= len; i += Simd.F.length()) {
            FloatVector v = FloatVector.fromArray(Simd.F, g, i);
            v.div(Simd.exp(v.neg()).add(1f))
                    .mul(FloatVector.fromArray(Simd.F, u, i))
                    .intoArray(o, i);
        }
        for (; i < len; i++) {
            float v = g[i];
            o[i] = v / (1f + Simd.exp(-v)) * u[i];
        }
    }

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
        attention.run(layer, q, n, qSeq, plan, rope, shape, scale, out);
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
