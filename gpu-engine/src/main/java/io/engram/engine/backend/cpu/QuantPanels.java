package io.engram.engine.backend.cpu;

import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * A Q8_0 or Q4_0 matrix repacked for decode steps: the same column-major groups of rows as {@link Panels}, holding
 * Q8_0's int8 quants, or Q4_0's nibbles still packed two to a byte (byte {@code j} of a column of a group holds rows
 * {@code j} and {@code j + GROUP/2}, so one load and a mask or a shift give a vector of rows), with each 32-column
 * block's scales as a float per row. The kernel broadcasts one activation, multiply-adds the quants of a vector of rows,
 * and scales each 32-column partial sum by its rows' scales (Q4_0's offset of 8 comes off as 8 times the block's
 * activation sum): no lane sums, no row decoded to memory. For more tokens (prefill) each group is dequantized once to
 * a float scratch in the same layout and multiplied by {@link Panels}' F32 tile kernel, so one conversion serves every
 * token of the chunk.
 *
 * <p>Memory, on the Java heap beside the file's mapping: per weight one byte (Q8_0) or half a byte (Q4_0, as in the
 * file), plus 4 bytes of scale per 32 weights.
 */
final class QuantPanels {
    private static final VectorSpecies<Float> F = Simd.F;
    private static final int P = F.length();
    private static final VectorSpecies<Byte> B =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, P * 8)));
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final int GROUP = Panels.GROUP;
    private static final int BLOCK = 32;
    /** Up to this many tokens, the direct kernel; beyond, a dequantized group serves every token. */
    static final int DIRECT_TOKENS = 2;

    private final byte[] q;
    private final float[] scales;
    private final int rows;
    private final int cols;
    /** Q4_0: {@link #q} holds packed nibbles (GROUP/2 bytes per column of a group). */
    private final boolean nibbles;

    private QuantPanels(byte[] q, float[] scales, int rows, int cols, boolean nibbles) {
        this.q = q;
        this.scales = scales;
        this.rows = rows;
        this.cols = cols;
        this.nibbles = nibbles;
    }

    /** Whether a tensor of this type and shape is repacked (Q8_0/Q4_0 matrices, on CPUs with 8 or more float lanes). */
    static boolean accepts(WeightTensor t) {
        return t.shape().length == 2
                && (t.dtype() == DType.Q8_0 || t.dtype() == DType.Q4_0)
                && B.length() == P
                && t.cols() % BLOCK == 0;
    }

    static QuantPanels pack(WeightTensor t) {
        int rows = t.rows();
        int cols = t.cols();
        int groups = (rows + GROUP - 1) / GROUP;
        boolean q4 = t.dtype() == DType.Q4_0;
        long size = (long) groups * (q4 ? GROUP / 2 : GROUP) * cols;
        if (size > Integer.MAX_VALUE - 64) {
            throw new IllegalArgumentException(
                    "%s: %d x %d is too large to repack for the CPU matmul".formatted(t.name(), rows, cols));
        }
        int blocks = cols / BLOCK;
        byte[] q = new byte[(int) size];
        float[] scales = new float[groups * blocks * GROUP];
        long blockBytes = t.dtype().bytesFor(BLOCK);
        for (int r = 0; r < rows; r++) {
            int g = r / GROUP;
            int lane = r % GROUP;
            int sBase = g * blocks * GROUP + lane;
            for (int kb = 0; kb < blocks; kb++) {
                long off = r * t.rowBytes() + kb * blockBytes;
                scales[sBase + kb * GROUP] = Quant.halfAt(t.data(), off);
                for (int j = 0; j < BLOCK; j++) {
                    int k = kb * BLOCK + j;
                    if (q4) {
                        int packed = t.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, off + 2 + (j % 16)) & 0xFF;
                        int v = j < 16 ? packed & 0x0F : packed >>> 4; // stored + 8, as in the file
                        int at = g * cols * (GROUP / 2) + k * (GROUP / 2) + lane % (GROUP / 2);
                        q[at] |= (byte) (lane < GROUP / 2 ? v : v << 4);
                    } else {
                        q[g * cols * GROUP + k * GROUP + lane] =
                                t.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, off + 2 + j);
                    }
                }
            }
        }
        return new QuantPanels(q, scales, rows, cols, q4);
    }

    int groups() {
        return (rows + GROUP - 1) / GROUP;
    }

    private FloatVector quants(int at) {
        return (FloatVector) ByteVector.fromArray(B, q, at).convertShape(VectorOperators.B2F, F, 0);
    }

    /**
     * The {@link #B}-many packed bytes at {@code at}, each widened to an int lane once: its low nibble is
     * {@link #low}, its high nibble {@link #high} (a mask or shift per nibble on bytes, then a widening per nibble, cost
     * a third more operations).
     */
    private IntVector packed(int at) {
        return (IntVector) ByteVector.fromArray(B, q, at).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
    }

    /** The low nibbles of widened bytes, as floats 0..15. */
    private static FloatVector low(IntVector packed) {
        return (FloatVector) packed.and(0x0F).convert(VectorOperators.I2F, 0);
    }

    /** The high nibbles of widened bytes, as floats 0..15. */
    private static FloatVector high(IntVector packed) {
        return (FloatVector) packed.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0);
    }

    /**
     * {@code out[i * rows + r] = W[r] . x[i]} for the rows of groups {@code [g0, g1)}: one token at a time up to
     * {@code DIRECT_TOKENS} tokens, over dequantized groups beyond.
     */
    void multiply(int g0, int g1, float[] x, int n, float[] out) {
        int blocks = cols / BLOCK;
        if (n > DIRECT_TOKENS) {
            float[] scratch = new float[GROUP * cols];
            Panels.F32Tiles tiles = new Panels.F32Tiles(cols, rows, x, n, out);
            for (int g = g0; g < g1; g++) {
                dequantize(g, blocks, scratch);
                tiles.group(scratch, 0, g * GROUP);
            }
            return;
        }
        for (int g = g0; g < g1; g++) {
            for (int i = 0; i < n; i++) {
                token(g, blocks, x, i * cols, out, i);
            }
        }
    }

    /** Group {@code g} as floats (weight = quant x its block's scale, exact in float) in {@link Panels}' layout. */
    private void dequantize(int g, int blocks, float[] scratch) {
        int sBase = g * blocks * GROUP;
        FloatVector eight = FloatVector.broadcast(F, 8f);
        for (int kb = 0; kb < blocks; kb++) {
            int s = sBase + kb * GROUP;
            FloatVector s0 = FloatVector.fromArray(F, scales, s);
            FloatVector s1 = FloatVector.fromArray(F, scales, s + P);
            FloatVector s2 = FloatVector.fromArray(F, scales, s + 2 * P);
            FloatVector s3 = FloatVector.fromArray(F, scales, s + 3 * P);
            for (int k = kb * BLOCK; k < (kb + 1) * BLOCK; k++) {
                int o = k * GROUP;
                if (nibbles) {
                    int at = g * cols * (GROUP / 2) + k * (GROUP / 2);
                    IntVector lo = packed(at);
                    IntVector hi = packed(at + P);
                    low(lo).sub(eight).mul(s0).intoArray(scratch, o);
                    low(hi).sub(eight).mul(s1).intoArray(scratch, o + P);
                    high(lo).sub(eight).mul(s2).intoArray(scratch, o + 2 * P);
                    high(hi).sub(eight).mul(s3).intoArray(scratch, o + 3 * P);
                } else {
                    int qBase = g * cols * GROUP;
                    quants(qBase + o).mul(s0).intoArray(scratch, o);
                    quants(qBase + o + P).mul(s1).intoArray(scratch, o + P);
                    quants(qBase + o + 2 * P).mul(s2).intoArray(scratch, o + 2 * P);
                    quants(qBase + o + 3 * P).mul(s3).intoArray(scratch, o + 3 * P);
                }
            }
        }
    }

    private void token(int g, int blocks, float[] x, int x0, float[] out, int i) {
        if (nibbles) {
            tokenNibbles(g, blocks, x, x0, out, i);
            return;
        }
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int qBase = g * cols * GROUP;
        int sBase = g * blocks * GROUP;
        for (int kb = 0; kb < blocks; kb++) {
            FloatVector t0 = FloatVector.zero(F), t1 = t0, t2 = t0, t3 = t0;
            int k0 = kb * BLOCK;
            for (int k = k0; k < k0 + BLOCK; k++) {
                int o = qBase + k * GROUP;
                FloatVector b = FloatVector.broadcast(F, x[x0 + k]);
                t0 = quants(o).fma(b, t0);
                t1 = quants(o + P).fma(b, t1);
                t2 = quants(o + 2 * P).fma(b, t2);
                t3 = quants(o + 3 * P).fma(b, t3);
            }
            int s = sBase + kb * GROUP;
            a0 = t0.fma(FloatVector.fromArray(F, scales, s), a0);
            a1 = t1.fma(FloatVector.fromArray(F, scales, s + P), a1);
            a2 = t2.fma(FloatVector.fromArray(F, scales, s + 2 * P), a2);
            a3 = t3.fma(FloatVector.fromArray(F, scales, s + 3 * P), a3);
        }
        Panels.store(out, i * rows, g * GROUP, rows, a0, a1, a2, a3);
    }

    /** {@link #token} over packed nibbles: sum of (nibble x activation), less 8 x the block's activation sum, scaled. */
    private void tokenNibbles(int g, int blocks, float[] x, int x0, float[] out, int i) {
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int qBase = g * cols * (GROUP / 2);
        int sBase = g * blocks * GROUP;
        for (int kb = 0; kb < blocks; kb++) {
            FloatVector t0 = FloatVector.zero(F), t1 = t0, t2 = t0, t3 = t0;
            int k0 = kb * BLOCK;
            float sum = 0;
            for (int k = k0; k < k0 + BLOCK; k++) {
                int o = qBase + k * (GROUP / 2);
                float xk = x[x0 + k];
                sum += xk;
                FloatVector b = FloatVector.broadcast(F, xk);
                IntVector lo = packed(o);
                IntVector hi = packed(o + P);
                t0 = low(lo).fma(b, t0);
                t1 = low(hi).fma(b, t1);
                t2 = high(lo).fma(b, t2);
                t3 = high(hi).fma(b, t3);
            }
            FloatVector off = FloatVector.broadcast(F, -8f * sum);
            int s = sBase + kb * GROUP;
            a0 = t0.add(off).fma(FloatVector.fromArray(F, scales, s), a0);
            a1 = t1.add(off).fma(FloatVector.fromArray(F, scales, s + P), a1);
            a2 = t2.add(off).fma(FloatVector.fromArray(F, scales, s + 2 * P), a2);
            a3 = t3.add(off).fma(FloatVector.fromArray(F, scales, s + 3 * P), a3);
        }
        Panels.store(out, i * rows, g * GROUP, rows, a0, a1, a2, a3);
    }
}
