package io.engram.engine.backend.cpu;

import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * A float or bfloat16 matrix repacked for the CPU matmul, and the matmul over it. Rows are grouped by {@link #GROUP}
 * (four vectors' worth) and each group is stored column-major: for column k, the k-th weight of the group's rows lie
 * next to each other. The kernel broadcasts one activation and multiply-adds it into vectors of rows, so a product
 * needs no horizontal lane sums (in a row-major layout, summing a dot product's lanes cost as much as the dot itself
 * at width 256), and each weight vector loaded serves four tokens.
 *
 * <p>The kernels are static methods that take every array as a parameter and call nothing but the Vector API in their
 * loops: written as instance methods reading a field through small helpers, C2 kept the vectors boxed in some JVM runs
 * (BF16 prefill of 1024 x 1024 x 64 tokens took 90 ms to 1.1 s per call instead of 0.66 ms, in JMH; the engine's
 * prefill ran 1,000 or 4,000 tokens/s depending on the run).
 *
 * <p>Every output is {@code fma} over k = 0, 1, ... in order, starting from 0, whatever the tile: a token's result
 * does not depend on how many tokens share the call (prefill chunks, decode) nor on the thread count. BF16 stays
 * BF16 in memory (widened in registers, exactly); F16 is widened to F32 once here.
 */
final class Panels {
    private static final VectorSpecies<Float> F = Simd.F;
    private static final int P = F.length();
    private static final int PER_GROUP = 4;
    /** Rows per group: four vectors. */
    static final int GROUP = PER_GROUP * P;

    private static final int TOKENS = 4;

    private final float[] f;
    /**
     * BF16 weights in pairs: for each column of a group, {@code 2P} ints whose low halves are the bfloat16 weights of
     * rows {@code [0, P)} and {@code [2P, 3P)} and whose high halves are those of rows {@code [P, 2P)} and {@code [3P,
     * 4P)}. A shift or a mask widens them to floats inside an int vector.
     */
    private final int[] h;

    private final boolean bf16;
    private final int rows;
    private final int cols;
    private final int groupSize;

    private Panels(float[] f, int[] h, int rows, int cols) {
        this.f = f;
        this.h = h;
        this.bf16 = h != null;
        this.rows = rows;
        this.cols = cols;
        this.groupSize = cols * GROUP;
    }

    /** Whether a tensor of this type and shape is repacked (matrices stored as F32, F16 or BF16). */
    static boolean accepts(WeightTensor t) {
        return t.shape().length == 2 && (t.dtype() == DType.F32 || t.dtype() == DType.F16 || t.dtype() == DType.BF16);
    }

    /**
     * Repacks a matrix onto the Java heap (int indices let the JIT drop the bounds checks that off-heap long offsets
     * kept in the kernel's loop). A matrix of more than 2^31 - 1 padded elements is refused.
     */
    static Panels pack(WeightTensor t) {
        boolean bf16 = t.dtype() == DType.BF16;
        int rows = t.rows();
        int cols = t.cols();
        long size = (long) ((rows + GROUP - 1) / GROUP) * GROUP * cols;
        if (size > Integer.MAX_VALUE - 64) {
            throw new IllegalArgumentException(
                    "%s: %d x %d is too large to repack for the CPU matmul".formatted(t.name(), rows, cols));
        }
        float[] f = bf16 ? null : new float[(int) size]; // zeros: padding rows stay 0
        int[] h = bf16 ? new int[(int) (size / 2)] : null;
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            int base = (r / GROUP) * GROUP * cols + r % GROUP;
            if (bf16) {
                int v = (r % GROUP) / P; // which of the group's four row vectors
                int lane = r % P;
                int shift = (v % 2) * 16; // vectors 0 and 2 in the low halves, 1 and 3 in the high halves
                int pairBase = (r / GROUP) * (GROUP / 2) * cols + (v / 2) * P + lane;
                for (int k = 0; k < cols; k++) {
                    int bits = t.data().get(Quant.I16_LE, ((long) r * cols + k) * 2) & 0xFFFF;
                    h[pairBase + k * (GROUP / 2)] |= bits << shift;
                }
                continue;
            }
            Quant.decode(t.dtype(), t.data(), (long) r * cols, row, 0, cols);
            for (int k = 0; k < cols; k++) {
                f[base + k * GROUP] = row[k];
            }
        }
        return new Panels(f, h, rows, cols);
    }

    int groups() {
        return (rows + GROUP - 1) / GROUP;
    }

    /**
     * Work items a matmul of {@code n} tokens splits between threads: row groups, or pairs of them for one token (the
     * decode kernel reads two groups side by side, so no thread's share leaves one group to the one-group kernel).
     */
    int parts(int n) {
        return n == 1 ? (groups() + 1) / 2 : groups();
    }

    /** {@link #multiply} over the work items {@code [p0, p1)} of {@link #parts}. */
    void multiplyParts(int p0, int p1, float[] x, int n, float[] out) {
        if (n == 1) {
            multiply(2 * p0, Math.min(2 * p1, groups()), x, n, out);
        } else {
            multiply(p0, p1, x, n, out);
        }
    }

    long bytes() {
        return 4L * (bf16 ? h.length : f.length);
    }

    /** {@code out[i * rows + r] = W[r] . x[i]} for the rows of groups {@code [g0, g1)} and tokens {@code [0, n)}. */
    void multiply(int g0, int g1, float[] x, int n, float[] out) {
        if (n == 1) {
            decode(g0, g1, x, out);
            return;
        }
        if (!bf16) {
            F32Tiles tiles = new F32Tiles(cols, rows, x, n, out);
            for (int g = g0; g < g1; g++) {
                tiles.group(f, g * groupSize, g * GROUP);
            }
            return;
        }
        for (int g = g0; g < g1; g++) {
            int at = g * groupSize / 2; // ints: two weights each
            int r = g * GROUP;
            int i = 0;
            for (; i + TOKENS <= n; i += TOKENS) {
                tile4Bf16(h, at, cols, x, i * cols, out, i, r, rows);
            }
            for (; i < n; i++) {
                tile1Bf16(h, at, cols, x, i * cols, out, i, r, rows);
            }
        }
    }

    /**
     * One token: groups two at a time, so that two weight streams are read side by side. One group's four accumulators
     * wait on the FMA latency each step, which left the loads of a single stream at ~70% of what a core streams from
     * memory (a 2 GB BF16 read on this machine: 16-21 GB/s for one group, 25-28 for two, 26-29 for a plain sum).
     * Each row still accumulates over k in order, so results are those of the one-group kernels.
     */
    private void decode(int g0, int g1, float[] x, float[] out) {
        int g = g0;
        for (; g + 2 <= g1; g += 2) {
            if (bf16) {
                pair1Bf16(h, g * groupSize / 2, groupSize / 2, cols, x, out, g * GROUP, rows);
            } else {
                pair1F32(f, g * groupSize, groupSize, cols, x, out, g * GROUP, rows);
            }
        }
        if (g < g1) {
            if (bf16) {
                tile1Bf16(h, g * groupSize / 2, cols, x, 0, out, 0, g * GROUP, rows);
            } else {
                tile1F32(f, g * groupSize, cols, x, out, g * GROUP, rows);
            }
        }
    }

    /**
     * The F32 kernel over groups laid out as {@link Panels} lays them out (also used by {@link QuantPanels} for prefill,
     * over a group dequantized to a scratch). One token alone (decode) runs the one-token kernel; two or three tokens
     * left over after the 4-token tiles run in one tile, zero-padded. The order of accumulation is the tile's either way.
     */
    static final class F32Tiles {
        private final int cols;
        private final int rows;
        private final float[] x;
        private final int n;
        private final float[] out;
        private final int full;
        private final float[] padX;
        private final float[] padOut;

        F32Tiles(int cols, int rows, float[] x, int n, float[] out) {
            this.cols = cols;
            this.rows = rows;
            this.x = x;
            this.n = n;
            this.out = out;
            this.full = n - n % TOKENS;
            if (full < n && n > 1) {
                padX = new float[TOKENS * cols];
                padOut = new float[TOKENS * rows];
                System.arraycopy(x, full * cols, padX, 0, (n - full) * cols);
            } else {
                padX = null;
                padOut = null;
            }
        }

        /** Every token for the group of rows {@code [r, r + GROUP)} stored from {@code w[at]}. */
        void group(float[] w, int at, int r) {
            for (int i = 0; i < full; i += TOKENS) {
                tile4F32(w, at, cols, x, i * cols, out, i, r, rows);
            }
            if (n == 1) {
                tile1F32(w, at, cols, x, out, r, rows);
                return;
            }
            if (padX != null) {
                tile4F32(w, at, cols, padX, 0, padOut, 0, r, rows);
                int len = Math.min(GROUP, rows - r);
                for (int i = full; i < n; i++) {
                    System.arraycopy(padOut, (i - full) * rows + r, out, i * rows + r, len);
                }
            }
        }
    }

    /** Decode: one token's outputs for rows {@code [r, r + GROUP)}, the weights read once at a quarter of the tile's FMAs. */
    private static void tile1F32(float[] f, int at, int cols, float[] x, float[] out, int r, int rows) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int step = P;
        for (int k = 0; k < cols; k++) {
            int o = at + k * GROUP;
            FloatVector b = FloatVector.broadcast(F, x[k]);
            a0 = FloatVector.fromArray(F, f, o).fma(b, a0);
            a1 = FloatVector.fromArray(F, f, o + step).fma(b, a1);
            a2 = FloatVector.fromArray(F, f, o + 2 * step).fma(b, a2);
            a3 = FloatVector.fromArray(F, f, o + 3 * step).fma(b, a3);
        }
        store(out, 0, r, rows, a0, a1, a2, a3);
    }

    /** {@link #tile1F32} for the groups at {@code at} and {@code at + next} (rows {@code [r, r + 2 GROUP)}). */
    private static void pair1F32(float[] f, int at, int next, int cols, float[] x, float[] out, int r, int rows) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        int step = P;
        for (int k = 0; k < cols; k++) {
            int o = at + k * GROUP;
            int o2 = o + next;
            FloatVector b = FloatVector.broadcast(F, x[k]);
            a0 = FloatVector.fromArray(F, f, o).fma(b, a0);
            a1 = FloatVector.fromArray(F, f, o + step).fma(b, a1);
            a2 = FloatVector.fromArray(F, f, o + 2 * step).fma(b, a2);
            a3 = FloatVector.fromArray(F, f, o + 3 * step).fma(b, a3);
            c0 = FloatVector.fromArray(F, f, o2).fma(b, c0);
            c1 = FloatVector.fromArray(F, f, o2 + step).fma(b, c1);
            c2 = FloatVector.fromArray(F, f, o2 + 2 * step).fma(b, c2);
            c3 = FloatVector.fromArray(F, f, o2 + 3 * step).fma(b, c3);
        }
        store(out, 0, r, rows, a0, a1, a2, a3);
        store(out, 0, r + GROUP, rows, c0, c1, c2, c3);
    }

    /** {@link #tile1Bf16} for the groups at {@code at} and {@code at + next} (ints; rows {@code [r, r + 2 GROUP)}). */
    private static void pair1Bf16(int[] h, int at, int next, int cols, float[] x, float[] out, int r, int rows) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        for (int k = 0; k < cols; k++) {
            int o = at + k * (GROUP / 2);
            int o2 = o + next;
            IntVector p01 = IntVector.fromArray(I, h, o);
            IntVector p23 = IntVector.fromArray(I, h, o + P);
            IntVector q01 = IntVector.fromArray(I, h, o2);
            IntVector q23 = IntVector.fromArray(I, h, o2 + P);
            FloatVector b = FloatVector.broadcast(F, x[k]);
            a0 = p01.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b, a0);
            a1 = p01.lanewise(VectorOperators.AND, HIGH).reinterpretAsFloats().fma(b, a1);
            a2 = p23.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b, a2);
            a3 = p23.lanewise(VectorOperators.AND, HIGH).reinterpretAsFloats().fma(b, a3);
            c0 = q01.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b, c0);
            c1 = q01.lanewise(VectorOperators.AND, HIGH).reinterpretAsFloats().fma(b, c1);
            c2 = q23.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b, c2);
            c3 = q23.lanewise(VectorOperators.AND, HIGH).reinterpretAsFloats().fma(b, c3);
        }
        store(out, 0, r, rows, a0, a1, a2, a3);
        store(out, 0, r + GROUP, rows, c0, c1, c2, c3);
    }

    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final int HIGH = 0xFFFF0000;

    private static void tile1Bf16(int[] h, int at, int cols, float[] x, int x0, float[] out, int i, int r, int rows) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        for (int k = 0; k < cols; k++) {
            int o = at + k * (GROUP / 2);
            IntVector p01 = IntVector.fromArray(I, h, o);
            IntVector p23 = IntVector.fromArray(I, h, o + P);
            FloatVector b = FloatVector.broadcast(F, x[x0 + k]);
            a0 = p01.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b, a0);
            a1 = p01.lanewise(VectorOperators.AND, HIGH).reinterpretAsFloats().fma(b, a1);
            a2 = p23.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b, a2);
            a3 = p23.lanewise(VectorOperators.AND, HIGH).reinterpretAsFloats().fma(b, a3);
        }
        store(out, i * rows, r, rows, a0, a1, a2, a3);
    }

    private static void tile4F32(float[] f, int at, int cols, float[] x, int x0, float[] out, int i, int r, int rows) {
        FloatVector z = FloatVector.zero(F);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
        FloatVector a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
        int step = P;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        for (int k = 0; k < cols; k++) {
            int o = at + k * GROUP;
            FloatVector w0 = FloatVector.fromArray(F, f, o);
            FloatVector w1 = FloatVector.fromArray(F, f, o + step);
            FloatVector w2 = FloatVector.fromArray(F, f, o + 2 * step);
            FloatVector w3 = FloatVector.fromArray(F, f, o + 3 * step);
            FloatVector b = FloatVector.broadcast(F, x[x0 + k]);
            a00 = w0.fma(b, a00);
            a01 = w1.fma(b, a01);
            a02 = w2.fma(b, a02);
            a03 = w3.fma(b, a03);
            b = FloatVector.broadcast(F, x[x1 + k]);
            a10 = w0.fma(b, a10);
            a11 = w1.fma(b, a11);
            a12 = w2.fma(b, a12);
            a13 = w3.fma(b, a13);
            b = FloatVector.broadcast(F, x[x2 + k]);
            a20 = w0.fma(b, a20);
            a21 = w1.fma(b, a21);
            a22 = w2.fma(b, a22);
            a23 = w3.fma(b, a23);
            b = FloatVector.broadcast(F, x[x3 + k]);
            a30 = w0.fma(b, a30);
            a31 = w1.fma(b, a31);
            a32 = w2.fma(b, a32);
            a33 = w3.fma(b, a33);
        }
        store(out, i * rows, r, rows, a00, a01, a02, a03);
        store(out, (i + 1) * rows, r, rows, a10, a11, a12, a13);
        store(out, (i + 2) * rows, r, rows, a20, a21, a22, a23);
        store(out, (i + 3) * rows, r, rows, a30, a31, a32, a33);
    }

    private static void tile4Bf16(int[] h, int at, int cols, float[] x, int x0, float[] out, int i, int r, int rows) {
        FloatVector z = FloatVector.zero(F);
        FloatVector a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z;
        FloatVector a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        for (int k = 0; k < cols; k++) {
            int o = at + k * (GROUP / 2);
            IntVector p01 = IntVector.fromArray(I, h, o);
            IntVector p23 = IntVector.fromArray(I, h, o + P);
            FloatVector w0 = p01.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector w1 = p01.lanewise(VectorOperators.AND, HIGH).reinterpretAsFloats();
            FloatVector w2 = p23.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector w3 = p23.lanewise(VectorOperators.AND, HIGH).reinterpretAsFloats();
            FloatVector b = FloatVector.broadcast(F, x[x0 + k]);
            a00 = w0.fma(b, a00);
            a01 = w1.fma(b, a01);
            a02 = w2.fma(b, a02);
            a03 = w3.fma(b, a03);
            b = FloatVector.broadcast(F, x[x1 + k]);
            a10 = w0.fma(b, a10);
            a11 = w1.fma(b, a11);
            a12 = w2.fma(b, a12);
            a13 = w3.fma(b, a13);
            b = FloatVector.broadcast(F, x[x2 + k]);
            a20 = w0.fma(b, a20);
            a21 = w1.fma(b, a21);
            a22 = w2.fma(b, a22);
            a23 = w3.fma(b, a23);
            b = FloatVector.broadcast(F, x[x3 + k]);
            a30 = w0.fma(b, a30);
            a31 = w1.fma(b, a31);
            a32 = w2.fma(b, a32);
            a33 = w3.fma(b, a33);
        }
        store(out, i * rows, r, rows, a00, a01, a02, a03);
        store(out, (i + 1) * rows, r, rows, a10, a11, a12, a13);
        store(out, (i + 2) * rows, r, rows, a20, a21, a22, a23);
        store(out, (i + 3) * rows, r, rows, a30, a31, a32, a33);
    }

    /** One token's outputs (from {@code out[o]}) for rows {@code [r, r + GROUP)}, the padding rows past {@code rows} left out. */
    static void store(
            float[] out, int o, int r, int rows, FloatVector v0, FloatVector v1, FloatVector v2, FloatVector v3) {
        if (r + GROUP <= rows) {
            v0.intoArray(out, o + r);
            v1.intoArray(out, o + r + P);
            v2.intoArray(out, o + r + 2 * P);
            v3.intoArray(out, o + r + 3 * P);
            return;
        }
        storePart(out, o, r, rows, v0);
        storePart(out, o, r + P, rows, v1);
        storePart(out, o, r + 2 * P, rows, v2);
        storePart(out, o, r + 3 * P, rows, v3);
    }

    private static void storePart(float[] out, int o, int r, int rows, FloatVector v) {
        if (r < rows) {
            VectorMask<Float> m = F.indexInRange(r, rows);
            v.intoArray(out, o + r, m);
        }
    }
}
