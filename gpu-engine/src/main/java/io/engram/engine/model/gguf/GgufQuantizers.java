package io.engram.engine.model.gguf;

import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Encoders for every {@link DType} (for {@link GgufWriter}: synthetic bench models and tests), written from the ggml block definitions ({@code ggml-common.h}) and
 * deliberately independent of {@link Quant}'s decoders, so that a round trip through both checks each against the
 * format, and llama.cpp reading our files checks both against ggml. The K-quant encoders are simple (no search for
 * optimal scales, unlike ggml's {@code make_qkx2_quants}): any valid encoding proves the layout.
 *
 * <p>Block layouts: Q8_0 = fp16 d, int8 q[32]; x = d*q. Q4_0 = fp16 d, u8 qs[16] (value j in the low nibble of byte
 * j, value j+16 in the high nibble); x = d*(q-8). Q4_K = fp16 d, fp16 dmin, u8 scales[12] (eight 6-bit scales and
 * mins), u8 qs[128] (per 64 values: 32 bytes, low nibbles the first 32, high nibbles the next 32); x = d*sc*q -
 * dmin*m. Q6_K = u8 ql[128], u8 qh[64], int8 scales[16], fp16 d; x = d*scale*(q-32) with one scale per 16 values.
 */
public final class GgufQuantizers {
    private GgufQuantizers() {}

    /** Encodes {@code x} (row-major, rows a multiple of the block size long) in {@code type}. */
    public static byte[] encode(DType type, float[] x) {
        if (x.length % type.blockSize() != 0) {
            throw new IllegalArgumentException(
                    "%s needs a multiple of %d values, got %d".formatted(type, type.blockSize(), x.length));
        }
        ByteBuffer out =
                ByteBuffer.allocate(Math.toIntExact(type.bytesFor(x.length))).order(ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case F32 -> {
                for (float v : x) {
                    out.putFloat(v);
                }
            }
            case F16 -> {
                for (float v : x) {
                    out.putShort(Float.floatToFloat16(v));
                }
            }
            case BF16 -> {
                for (float v : x) {
                    out.putShort(Quant.floatToBf16(v));
                }
            }
            case Q8_0 -> {
                for (int b = 0; b < x.length; b += 32) {
                    q8_0(x, b, out);
                }
            }
            case Q4_0 -> {
                for (int b = 0; b < x.length; b += 32) {
                    q4_0(x, b, out);
                }
            }
            case Q4_K -> {
                for (int b = 0; b < x.length; b += 256) {
                    q4_K(x, b, out);
                }
            }
            case Q6_K -> {
                for (int b = 0; b < x.length; b += 256) {
                    q6_K(x, b, out);
                }
            }
        }
        return out.array();
    }

    /** Round half away from zero, as C's roundf. */
    static int roundf(float v) {
        return (int) (v < 0 ? -Math.floor(-v + 0.5f) : Math.floor(v + 0.5f));
    }

    private static float half(float v) {
        return Float.float16ToFloat(Float.floatToFloat16(v));
    }

    private static void q8_0(float[] x, int o, ByteBuffer out) {
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            amax = Math.max(amax, Math.abs(x[o + j]));
        }
        float d = amax / 127f;
        float id = d != 0 ? 1f / d : 0f;
        out.putShort(Float.floatToFloat16(d));
        for (int j = 0; j < 32; j++) {
            out.put((byte) roundf(x[o + j] * id));
        }
    }

    /** ggml's reference: the signed value of largest magnitude maps to -8. */
    private static void q4_0(float[] x, int o, ByteBuffer out) {
        float amax = 0;
        float max = 0;
        for (int j = 0; j < 32; j++) {
            if (Math.abs(x[o + j]) > amax) {
                amax = Math.abs(x[o + j]);
                max = x[o + j];
            }
        }
        float d = max / -8f;
        float id = d != 0 ? 1f / d : 0f;
        out.putShort(Float.floatToFloat16(d));
        for (int j = 0; j < 16; j++) {
            int lo = Math.min(15, (int) (x[o + j] * id + 8.5f));
            int hi = Math.min(15, (int) (x[o + j + 16] * id + 8.5f));
            out.put((byte) (lo | (hi << 4)));
        }
    }

    private static void q4_K(float[] x, int o, ByteBuffer out) {
        // per 32-value sub-block: an offset m (>= -min) and a step s so that x + m lies in [0, 15 s]
        float[] mins = new float[8];
        float maxMin = 0;
        for (int j = 0; j < 8; j++) {
            float mn = 0;
            for (int l = 0; l < 32; l++) {
                mn = Math.min(mn, x[o + 32 * j + l]);
            }
            mins[j] = -mn;
            maxMin = Math.max(maxMin, -mn);
        }
        float dmin = half(maxMin / 63f);
        int[] m = new int[8];
        float[] steps = new float[8];
        float maxStep = 0;
        for (int j = 0; j < 8; j++) {
            m[j] = dmin == 0 ? 0 : Math.min(63, (int) Math.ceil(mins[j] / dmin));
            float mx = 0;
            for (int l = 0; l < 32; l++) {
                mx = Math.max(mx, x[o + 32 * j + l] + dmin * m[j]);
            }
            steps[j] = mx / 15f;
            maxStep = Math.max(maxStep, steps[j]);
        }
        float d = half(maxStep / 63f);
        int[] sc = new int[8];
        for (int j = 0; j < 8; j++) {
            sc[j] = d == 0 ? 0 : Math.min(63, (int) Math.ceil(steps[j] / d));
        }
        out.putShort(Float.floatToFloat16(d));
        out.putShort(Float.floatToFloat16(dmin));
        byte[] scales = new byte[12];
        for (int j = 0; j < 4; j++) {
            // sub-blocks 0-3: low 6 bits of bytes 0-3 (scale) and 4-7 (min)
            scales[j] = (byte) (sc[j] & 63);
            scales[j + 4] = (byte) (m[j] & 63);
        }
        for (int j = 4; j < 8; j++) {
            // sub-blocks 4-7: low 4 bits in bytes 8-11 (scale low nibble, min high nibble), top 2 bits in the spare
            // top bits of bytes j-4 (scale) and j (min)
            scales[j + 4] = (byte) ((sc[j] & 0x0F) | ((m[j] & 0x0F) << 4));
            scales[j - 4] |= (byte) ((sc[j] >> 4) << 6);
            scales[j] |= (byte) ((m[j] >> 4) << 6);
        }
        out.put(scales);
        int[] q = new int[256];
        for (int i = 0; i < 256; i++) {
            int j = i / 32;
            float step = d * sc[j];
            q[i] = step == 0 ? 0 : Math.max(0, Math.min(15, roundf((x[o + i] + dmin * m[j]) / step)));
        }
        for (int chunk = 0; chunk < 4; chunk++) {
            for (int l = 0; l < 32; l++) {
                out.put((byte) (q[64 * chunk + l] | (q[64 * chunk + 32 + l] << 4)));
            }
        }
    }

    private static void q6_K(float[] x, int o, ByteBuffer out) {
        float[] steps = new float[16];
        float maxStep = 0;
        for (int j = 0; j < 16; j++) {
            float amax = 0;
            for (int l = 0; l < 16; l++) {
                amax = Math.max(amax, Math.abs(x[o + 16 * j + l]));
            }
            steps[j] = amax / 31f;
            maxStep = Math.max(maxStep, steps[j]);
        }
        float d = half(maxStep / 127f);
        int[] sc = new int[16];
        for (int j = 0; j < 16; j++) {
            sc[j] = d == 0 ? 0 : Math.min(127, (int) Math.ceil(steps[j] / d));
        }
        int[] q = new int[256]; // biased by 32: 0..63
        for (int i = 0; i < 256; i++) {
            float step = d * sc[i / 16];
            q[i] = (step == 0 ? 0 : Math.max(-32, Math.min(31, roundf(x[o + i] / step)))) + 32;
        }
        byte[] ql = new byte[128];
        byte[] qh = new byte[64];
        for (int n = 0; n < 2; n++) {
            for (int l = 0; l < 32; l++) {
                int base = 128 * n + l;
                int q1 = q[base], q2 = q[base + 32], q3 = q[base + 64], q4 = q[base + 96];
                ql[64 * n + l] = (byte) ((q1 & 0x0F) | ((q3 & 0x0F) << 4));
                ql[64 * n + 32 + l] = (byte) ((q2 & 0x0F) | ((q4 & 0x0F) << 4));
                qh[32 * n + l] = (byte) ((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
        out.put(ql);
        out.put(qh);
        for (int j = 0; j < 16; j++) {
            out.put((byte) sc[j]);
        }
        out.putShort(Float.floatToFloat16(d));
    }
}
