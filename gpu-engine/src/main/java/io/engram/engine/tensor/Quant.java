package io.engram.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Scalar decoding and encoding of the storage types, the reference for every backend's fused kernels. Layouts follow
 * ggml's block formats (Q8_0, Q4_0, Q4_K, Q6_K) and IEEE half / bfloat16. Checked by {@code QuantTest} and, end to end,
 * against llama.cpp by the GGUF parity tests.
 */
public final class Quant {
    public static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfShort I16_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Quant() {}

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** Round-to-nearest-even conversion, as PyTorch does; NaN stays NaN. */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    public static float halfAt(MemorySegment seg, long offset) {
        return Float.float16ToFloat(seg.get(I16_LE, offset));
    }

    /**
     * Decodes {@code count} values of a tensor, starting at element {@code firstElement}, into {@code dst[dstOff..]}.
     * For quantized types both {@code firstElement} and {@code count} must be multiples of the block size.
     */
    public static void decode(DType type, MemorySegment src, long firstElement, float[] dst, int dstOff, int count) {
        switch (type) {
            case F32 -> {
                MemorySegment.copy(src, F32_LE, firstElement * 4, dst, dstOff, count);
            }
            case F16 -> {
                long base = firstElement * 2;
                for (int i = 0; i < count; i++) {
                    dst[dstOff + i] = Float.float16ToFloat(src.get(I16_LE, base + 2L * i));
                }
            }
            case BF16 -> {
                long base = firstElement * 2;
                for (int i = 0; i < count; i++) {
                    dst[dstOff + i] = bf16ToFloat(src.get(I16_LE, base + 2L * i));
                }
            }
            case Q8_0, Q4_0, Q4_K, Q6_K -> {
                int bs = type.blockSize();
                if (firstElement % bs != 0 || count % bs != 0) {
                    throw new IllegalArgumentException("%s decode must cover whole blocks of %d, got [%d, +%d)"
                            .formatted(type, bs, firstElement, count));
                }
                long block = firstElement / bs;
                for (int b = 0; b < count / bs; b++) {
                    long off = (block + b) * type.bytesPerBlock();
                    int o = dstOff + b * bs;
                    switch (type) {
                        case Q8_0 -> decodeQ8_0(src, off, dst, o);
                        case Q4_0 -> decodeQ4_0(src, off, dst, o);
                        case Q4_K -> decodeQ4_K(src, off, dst, o);
                        case Q6_K -> decodeQ6_K(src, off, dst, o);
                        default -> throw new IllegalStateException(type.name());
                    }
                }
            }
        }
    }

    static void decodeQ8_0(MemorySegment s, long off, float[] y, int o) {
        float d = halfAt(s, off);
        for (int j = 0; j < 32; j++) {
            y[o + j] = d * s.get(ValueLayout.JAVA_BYTE, off + 2 + j);
        }
    }

    static void decodeQ4_0(MemorySegment s, long off, float[] y, int o) {
        float d = halfAt(s, off);
        for (int j = 0; j < 16; j++) {
            int q = s.get(ValueLayout.JAVA_BYTE, off + 2 + j) & 0xFF;
            y[o + j] = d * ((q & 0x0F) - 8);
            y[o + j + 16] = d * ((q >>> 4) - 8);
        }
    }

    static void decodeQ4_K(MemorySegment s, long off, float[] y, int o) {
        float d = halfAt(s, off);
        float dmin = halfAt(s, off + 2);
        long scales = off + 4;
        long qs = off + 16;
        int is = 0;
        for (int j = 0; j < 256; j += 64) {
            int sc1 = scaleK4(s, scales, is, false), m1 = scaleK4(s, scales, is, true);
            int sc2 = scaleK4(s, scales, is + 1, false), m2 = scaleK4(s, scales, is + 1, true);
            float d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2;
            for (int l = 0; l < 32; l++) {
                int q = s.get(ValueLayout.JAVA_BYTE, qs + l) & 0xFF;
                y[o + j + l] = d1 * (q & 0x0F) - mm1;
                y[o + j + 32 + l] = d2 * (q >>> 4) - mm2;
            }
            qs += 32;
            is += 2;
        }
    }

    /** The 6-bit scale (or min) of sub-block {@code j} packed in Q4_K's 12 scale bytes. */
    private static int scaleK4(MemorySegment s, long q, int j, boolean min) {
        if (j < 4) {
            return (s.get(ValueLayout.JAVA_BYTE, q + j + (min ? 4 : 0)) & 0xFF) & 63;
        }
        int hi = s.get(ValueLayout.JAVA_BYTE, q + j + 4) & 0xFF;
        if (!min) {
            return (hi & 0x0F) | (((s.get(ValueLayout.JAVA_BYTE, q + j - 4) & 0xFF) >>> 6) << 4);
        }
        return (hi >>> 4) | (((s.get(ValueLayout.JAVA_BYTE, q + j) & 0xFF) >>> 6) << 4);
    }

    static void decodeQ6_K(MemorySegment s, long off, float[] y, int o) {
        long ql = off;
        long qh = off + 128;
        long sc = off + 192;
        float d = halfAt(s, off + 208);
        for (int n = 0; n < 256; n += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int lo0 = s.get(ValueLayout.JAVA_BYTE, ql + l) & 0xFF;
                int lo1 = s.get(ValueLayout.JAVA_BYTE, ql + l + 32) & 0xFF;
                int h = s.get(ValueLayout.JAVA_BYTE, qh + l) & 0xFF;
                int q1 = ((lo0 & 0xF) | ((h & 3) << 4)) - 32;
                int q2 = ((lo1 & 0xF) | (((h >>> 2) & 3) << 4)) - 32;
                int q3 = ((lo0 >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
                int q4 = ((lo1 >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
                y[o + n + l] = d * s.get(ValueLayout.JAVA_BYTE, sc + is) * q1;
                y[o + n + l + 32] = d * s.get(ValueLayout.JAVA_BYTE, sc + is + 2) * q2;
                y[o + n + l + 64] = d * s.get(ValueLayout.JAVA_BYTE, sc + is + 4) * q3;
                y[o + n + l + 96] = d * s.get(ValueLayout.JAVA_BYTE, sc + is + 6) * q4;
            }
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }

    /**
     * Encodes {@code n} floats (a multiple of 32) as Q8_0 into {@code dst} at {@code dstOff}: per block d = max|x|/127
     * rounded to fp16, q = round(x / d) clamped to [-127, 127].
     */
    public static void encodeQ8_0(float[] x, int xOff, int n, MemorySegment dst, long dstOff) {
        if (n % 32 != 0) {
            throw new IllegalArgumentException("Q8_0 needs a multiple of 32 values, got " + n);
        }
        for (int b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[xOff + b * 32 + j]));
            }
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            long o = dstOff + (long) b * 34;
            dst.set(I16_LE, o, Float.floatToFloat16(d));
            for (int j = 0; j < 32; j++) {
                int q = Math.round(x[xOff + b * 32 + j] * id);
                dst.set(ValueLayout.JAVA_BYTE, o + 2 + j, (byte) Math.max(-127, Math.min(127, q)));
            }
        }
    }
}
