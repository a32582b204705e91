package io.engram.engine.backend.cpu;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels over float arrays and little-endian memory segments: dot products with four accumulators, axpy,
 * elementwise ops. Each has a scalar tail; results differ from the scalar order of summation only by float rounding
 * (checked against the reference backend with a tolerance).
 */
final class Simd {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int BITS = F.vectorBitSize();
    private static final int L = F.length();

    private Simd() {}

    static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        if (n < 2 * L) { // a head of 8 or 16 dims: a vector pass plus a lane sum costs more than the plain loop
            float s = 0f;
            for (int i = 0; i < n; i++) {
                s += a[aOff + i] * b[bOff + i];
            }
            return s;
        }
        int i = 0;
        float s = 0f;
        if (n >= 4 * L) {
            FloatVector s0 = FloatVector.zero(F),
                    s1 = FloatVector.zero(F),
                    s2 = FloatVector.zero(F),
                    s3 = FloatVector.zero(F);
            for (; i <= n - 4 * L; i += 4 * L) {
                s0 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), s0);
                s1 = FloatVector.fromArray(F, a, aOff + i + L).fma(FloatVector.fromArray(F, b, bOff + i + L), s1);
                s2 = FloatVector.fromArray(F, a, aOff + i + 2 * L)
                        .fma(FloatVector.fromArray(F, b, bOff + i + 2 * L), s2);
                s3 = FloatVector.fromArray(F, a, aOff + i + 3 * L)
                        .fma(FloatVector.fromArray(F, b, bOff + i + 3 * L), s3);
            }
            s = sumLanes(s0.add(s1).add(s2.add(s3)));
        }
        if (n - i >= L) {
            FloatVector acc = FloatVector.zero(F);
            for (; i <= n - L; i += L) {
                acc = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc);
            }
            s += sumLanes(acc);
        }
        for (; i < n; i++) {
            s += a[aOff + i] * b[bOff + i];
        }
        return s;
    }

    /** Dot product of n little-endian floats of {@code seg} at byte {@code segOff} with {@code b[bOff..]}. */
    static float dot(MemorySegment seg, long segOff, float[] b, int bOff, int n) {
        int i = 0;
        float s = 0f;
        if (n >= 4 * L) {
            FloatVector s0 = FloatVector.zero(F),
                    s1 = FloatVector.zero(F),
                    s2 = FloatVector.zero(F),
                    s3 = FloatVector.zero(F);
            for (; i <= n - 4 * L; i += 4 * L) {
                long o = segOff + 4L * i;
                s0 = FloatVector.fromMemorySegment(F, seg, o, ByteOrder.LITTLE_ENDIAN)
                        .fma(FloatVector.fromArray(F, b, bOff + i), s0);
                s1 = FloatVector.fromMemorySegment(F, seg, o + 4L * L, ByteOrder.LITTLE_ENDIAN)
                        .fma(FloatVector.fromArray(F, b, bOff + i + L), s1);
                s2 = FloatVector.fromMemorySegment(F, seg, o + 8L * L, ByteOrder.LITTLE_ENDIAN)
                        .fma(FloatVector.fromArray(F, b, bOff + i + 2 * L), s2);
                s3 = FloatVector.fromMemorySegment(F, seg, o + 12L * L, ByteOrder.LITTLE_ENDIAN)
                        .fma(FloatVector.fromArray(F, b, bOff + i + 3 * L), s3);
            }
            s = sumLanes(s0.add(s1).add(s2.add(s3)));
        }
        if (n - i >= L) {
            FloatVector acc = FloatVector.zero(F);
            for (; i <= n - L; i += L) {
                acc = FloatVector.fromMemorySegment(F, seg, segOff + 4L * i, ByteOrder.LITTLE_ENDIAN)
                        .fma(FloatVector.fromArray(F, b, bOff + i), acc);
            }
            s += sumLanes(acc);
        }
        for (; i < n; i++) {
            s += seg.get(io.engram.engine.tensor.Quant.F32_LE, segOff + 4L * i) * b[bOff + i];
        }
        return s;
    }

    /** Lane permutations i -> i xor k (k = 8, 4, 2, 1, where the vector has more than k lanes): the folds of sumLanes. */
    private static final VectorShuffle<Float> FOLD8 = fold(8);

    private static final VectorShuffle<Float> FOLD4 = fold(4);
    private static final VectorShuffle<Float> FOLD2 = fold(2);
    private static final VectorShuffle<Float> FOLD1 = fold(1);

    private static VectorShuffle<Float> fold(int k) {
        return VectorShuffle.fromOp(F, i -> k < L ? i ^ k : i);
    }

    /**
     * Sums the lanes in a fixed pairwise tree (halves added, then quarters, ...). {@code reduceLanes(ADD)} leaves the
     * order unspecified, and it differs between the interpreter and compiled code: results would change as the JIT
     * warms up, and the KV memory of a replayed stream would not be bit-identical. Each fold here is a lanewise add of
     * exact operands, so every execution mode gives the same float. Unrolled over constant shuffles so C2 keeps the
     * vectors in registers (a loop over an array of shuffles fell back to the Java implementation).
     */
    static float sumLanes(FloatVector v) {
        if (L > 16) {
            float s = 0f;
            for (float x : v.toArray()) {
                s += x;
            }
            return s;
        }
        if (L > 8) {
            v = v.add(v.rearrange(FOLD8));
        }
        if (L > 4) {
            v = v.add(v.rearrange(FOLD4));
        }
        if (L > 2) {
            v = v.add(v.rearrange(FOLD2));
        }
        if (L > 1) {
            v = v.add(v.rearrange(FOLD1));
        }
        return v.lane(0);
    }

    /** L bfloat16 values (the high halves of floats) that widen to one preferred float vector. */
    private static final VectorSpecies<Short> BF = VectorSpecies.of(short.class, VectorShape.forBitSize(L * 16));

    private static final VectorSpecies<Integer> BF_WIDE = VectorSpecies.of(int.class, F.vectorShape());

    /** L bfloat16 values of {@code a} from index {@code off}, widened to floats (exact). */
    static FloatVector bf16(short[] a, int off) {
        return ((IntVector) ShortVector.fromArray(BF, a, off).convertShape(VectorOperators.S2I, BF_WIDE, 0))
                .lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }

    /** L little-endian bfloat16 values of {@code seg} at byte {@code off}, widened to floats (exact). */
    static FloatVector bf16(MemorySegment seg, long off) {
        return ((IntVector) ShortVector.fromMemorySegment(BF, seg, off, ByteOrder.LITTLE_ENDIAN)
                        .convertShape(VectorOperators.S2I, BF_WIDE, 0))
                .lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }

    /** {@code y[yOff..] += alpha * x[xOff..]} for n values. */
    static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        if (n < L) {
            for (; i < n; i++) {
                y[yOff + i] += alpha * x[xOff + i];
            }
            return;
        }
        FloatVector va = FloatVector.broadcast(F, alpha);
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(F, x, xOff + i)
                    .fma(va, FloatVector.fromArray(F, y, yOff + i))
                    .intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] += alpha * x[xOff + i];
        }
    }

    static void addInPlace(float[] a, int aOff, float[] b, int bOff, int n) {
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(F, a, aOff + i)
                    .add(FloatVector.fromArray(F, b, bOff + i))
                    .intoArray(a, aOff + i);
        }
        for (; i < n; i++) {
            a[aOff + i] += b[bOff + i];
        }
    }

    /** {@code out[oOff+j] = a[aOff+j] * s * g[j]}. */
    static void scaleMul(float[] a, int aOff, float s, float[] g, float[] out, int oOff, int n) {
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(F, a, aOff + i)
                    .mul(s)
                    .mul(FloatVector.fromArray(F, g, i))
                    .intoArray(out, oOff + i);
        }
        for (; i < n; i++) {
            out[oOff + i] = a[aOff + i] * s * g[i];
        }
    }

    private static final float LOG2E = 1.44269504f;
    private static final float LN2_HI = 0.693145752f; // ln 2 split so n * LN2_HI is exact for |n| < 2^8
    private static final float LN2_LO = 1.42860677e-6f;

    /**
     * e^x for the softmax's x <= 0, within 5e-7 relative (seen: 2.5e-7): range reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6
     * polynomial, scaled by 2^n through the exponent bits. Plain float arithmetic, so the result is the same in the
     * interpreter and in compiled code (unlike an intrinsic that may differ from its fallback), 3-4x faster than Math.exp.
     */
    static float expNonPositive(float x) {
        if (x < -87f) {
            return 0f;
        }
        return expReduced(x);
    }

    /**
     * e^x for any x with {@link #expNonPositive}'s method: 0 below -87, infinity above 88 (e^88 is within 2% of the
     * largest float), else within 5e-7 relative. For the activation functions.
     */
    static float exp(float x) {
        if (x < -87f) {
            return 0f;
        }
        if (x > 88f) {
            return Float.POSITIVE_INFINITY;
        }
        return expReduced(x);
    }

    private static float expReduced(float x) {
        float n = (float) Math.floor(x * LOG2E + 0.5f);
        float r = x - n * LN2_HI - n * LN2_LO;
        float p = 1f + r * (1f + r * (0.5f + r * (1f / 6 + r * (1f / 24 + r * (1f / 120 + r * (1f / 720))))));
        return p * Float.intBitsToFloat(((int) n + 127) << 23);
    }

    /**
     * {@link #expNonPositive(float)} lane by lane, with the same float operations in the same order (the floor taken
     * from the truncation, less one where it rounded up), so each lane equals the scalar result bit for bit.
     */
    static FloatVector expNonPositive(FloatVector x) {
        return expReduced(x).blend(0f, x.compare(VectorOperators.LT, -87f));
    }

    /** {@link #exp(float)} lane by lane, bit for bit. */
    static FloatVector exp(FloatVector x) {
        return expReduced(x)
                .blend(0f, x.compare(VectorOperators.LT, -87f))
                .blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, 88f));
    }

    private static FloatVector expReduced(FloatVector x) {
        FloatVector y = x.mul(LOG2E).add(0.5f);
        FloatVector t = (FloatVector) ((IntVector) y.convert(VectorOperators.F2I, 0)).convert(VectorOperators.I2F, 0);
        FloatVector n = t.sub(1f, t.compare(VectorOperators.GT, y));
        FloatVector r = x.sub(n.mul(LN2_HI)).sub(n.mul(LN2_LO));
        FloatVector p = r.mul(1f / 720).add(1f / 120);
        p = r.mul(p).add(1f / 24);
        p = r.mul(p).add(1f / 6);
        p = r.mul(p).add(0.5f);
        p = r.mul(p).add(1f);
        p = r.mul(p).add(1f);
        FloatVector scale = ((IntVector) n.convert(VectorOperators.F2I, 0))
                .add(127)
                .lanewise(VectorOperators.LSHL, 23)
                .reinterpretAsFloats();
        return p.mul(scale);
    }

    /** int8 lanes that widen to one preferred float vector (16 bytes for 512-bit floats, 8 for 256-bit). */
    private static final VectorSpecies<Byte> BQ =
            VectorSpecies.of(byte.class, jdk.incubator.vector.VectorShape.forBitSize(Math.max(64, F.length() * 8)));

    private static final VectorSpecies<Float> FQ =
            VectorSpecies.of(float.class, jdk.incubator.vector.VectorShape.forBitSize(BQ.length() * 32));
    private static final int LQ = BQ.length();

    /**
     * Dot product of one Q8_0 row ({@code n/32} blocks of fp16 scale + 32 int8, at byte {@code rowOff}) with
     * {@code x[xOff..xOff+n)}, without decoding the row to memory: per block, int8 lanes are widened to floats and
     * multiplied with x in registers, the block's sum scaled by its d into one vector accumulator, and the lanes summed
     * once at the end.
     */
    static float dotQ8_0(MemorySegment seg, long rowOff, float[] x, int xOff, int n) {
        FloatVector total = FloatVector.zero(FQ);
        for (int b = 0; b < n / 32; b++) {
            long off = rowOff + b * 34L;
            float d = Float.float16ToFloat(seg.get(io.engram.engine.tensor.Quant.I16_LE, off));
            FloatVector acc = FloatVector.zero(FQ);
            for (int j = 0; j < 32; j += LQ) {
                FloatVector q =
                        (FloatVector) ByteVector.fromMemorySegment(BQ, seg, off + 2 + j, ByteOrder.LITTLE_ENDIAN)
                                .convertShape(VectorOperators.B2F, FQ, 0);
                acc = q.fma(FloatVector.fromArray(FQ, x, xOff + b * 32 + j), acc);
            }
            total = acc.fma(FloatVector.broadcast(FQ, d), total);
        }
        return sumLanes(total);
    }
}
