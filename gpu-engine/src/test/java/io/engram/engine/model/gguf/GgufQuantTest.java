package io.engram.engine.model.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Quant}'s decoders against our independent encoders ({@link GgufQuantizers}), through a GGUF file: every
 * decoded value must lie within the quantization error the format allows for its block. (That the layout is also
 * ggml's is shown with llama.cpp in {@code GgufLlamaCppParityTest}.)
 */
class GgufQuantTest {
    private static final long SEED = 11;

    @TempDir
    Path tmp;

    /** Gaussian rows with a few outliers and an all-zero block, so scales vary across blocks and sub-blocks. */
    private static float[] testValues(int n, long seed) {
        Random rnd = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            double scale = 0.1 + (i / 16 % 7) * 0.5;
            v[i] = (float) (rnd.nextGaussian() * scale + (i / 32 % 5 == 3 ? 0.7 : 0));
            if (rnd.nextInt(200) == 0) {
                v[i] *= 8;
            }
        }
        for (int i = 256; i < 512 && i < n; i++) {
            v[i] = 0;
        }
        return v;
    }

    private float[] roundTrip(DType type, float[] x, int rows) throws IOException {
        long cols = x.length / rows;
        Path p = new GgufWriter()
                .addTensor("w", type, new long[] {rows, cols}, x)
                .write(tmp.resolve(type + ".gguf"));
        try (GgufFile f = GgufFile.open(p)) {
            WeightTensor t = f.tensor("w");
            assertThat(t.dtype()).isEqualTo(type);
            float[] y = new float[x.length];
            // decode row by row at an offset, as a kernel would
            for (int r = 0; r < rows; r++) {
                Quant.decode(type, t.data(), r * cols, y, (int) (r * cols), (int) cols);
            }
            return y;
        }
    }

    @Test
    void floatTypesRoundTripExactlyAsTheirRounding() throws IOException {
        float[] x = testValues(4 * 96, SEED);
        assertThat(roundTrip(DType.F32, x, 4)).containsExactly(x);
        float[] f16 = roundTrip(DType.F16, x, 4);
        float[] bf16 = roundTrip(DType.BF16, x, 4);
        for (int i = 0; i < x.length; i++) {
            assertThat(f16[i]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(x[i])));
            assertThat(bf16[i]).isEqualTo(Quant.bf16ToFloat(Quant.floatToBf16(x[i])));
        }
    }

    /**
     * Checks |x - y| <= bound for every value and reports the worst fraction of the bound used. The bound is half the
     * step of the value's group of {@code groupSize} (its range, {@code [-amax, amax]} for symmetric formats and
     * {@code [min(0, min), max]} for Q4_K, over {@code stepsPerRange}) plus {@code slack} times the absmax of its
     * enclosing block of {@code blockSize} values (what rounding the scales to fp16 or to 6/8 bits can add).
     */
    private static void assertWithinSteps(
            DType type, float[] x, float[] y, int groupSize, double stepsPerRange, int blockSize, double slack) {
        boolean symmetric = type != DType.Q4_K;
        double worst = 0;
        for (int b = 0; b < x.length; b += blockSize) {
            double blockAmax = 0;
            for (int i = b; i < b + blockSize; i++) {
                blockAmax = Math.max(blockAmax, Math.abs(x[i]));
            }
            for (int g = b; g < b + blockSize; g += groupSize) {
                double lo = 0, hi = 0, amax = 0;
                for (int i = g; i < g + groupSize; i++) {
                    lo = Math.min(lo, x[i]);
                    hi = Math.max(hi, x[i]);
                    amax = Math.max(amax, Math.abs(x[i]));
                }
                double step = (symmetric ? 2 * amax : hi - lo) / stepsPerRange;
                double bound = step / 2 + slack * blockAmax + 1e-7;
                for (int i = g; i < g + groupSize; i++) {
                    double err = Math.abs(x[i] - y[i]);
                    assertThat(err)
                            .as(
                                    "%s value %d: %s decoded as %s (group range [%s, %s], seed %d)",
                                    type, i, x[i], y[i], lo, hi, SEED)
                            .isLessThanOrEqualTo(bound);
                    worst = Math.max(worst, err / bound);
                }
            }
        }
        System.out.printf("%s: worst error %.2f of its bound%n", type, worst);
    }

    @Test
    void q8_0IsWithinHalfAStep() throws IOException {
        float[] x = testValues(4 * 96, SEED);
        // step d = amax/127, range [-amax, amax] = 254 steps; fp16 d adds at most 127 * d * 2^-11 = amax * 2^-11
        assertWithinSteps(DType.Q8_0, x, roundTrip(DType.Q8_0, x, 4), 32, 254, 32, 0x1p-11);
    }

    @Test
    void q4_0IsWithinAStep() throws IOException {
        float[] x = testValues(4 * 96, SEED);
        // ggml's scheme: d = -max/8 for the value of largest magnitude, q in [0, 15]; the side opposite that value
        // saturates at 7 steps, so values there can be off by a whole step amax/8 (bound: half of 2 amax / 8)
        assertWithinSteps(DType.Q4_0, x, roundTrip(DType.Q4_0, x, 4), 32, 8, 32, 8 * 0x1p-11);
    }

    @Test
    void q4_KIsWithinItsStepsAndCloseOverall() throws IOException {
        float[] x = testValues(3 * 512, SEED);
        float[] y = roundTrip(DType.Q4_K, x, 3);
        // 32-value sub-blocks of 15 steps over [min(0, min), max]. The 6-bit min, rounded up, widens the range by at
        // most dmin = amax/63 (1/63/30 of amax on the half step); the 6-bit scale, rounded up, adds at most one unit
        // d = (max step)/63 <= (2.02 amax / 15)/63 to the step (half of it on the error): 0.0016 amax, so 0.002
        assertWithinSteps(DType.Q4_K, x, y, 32, 15, 256, 0.002);
        assertThat(relativeRms(x, y)).as("Q4_K relative RMS error").isLessThan(0.12);
    }

    @Test
    void q6_KIsWithinItsStepsAndCloseOverall() throws IOException {
        float[] x = testValues(3 * 512, SEED);
        float[] y = roundTrip(DType.Q6_K, x, 3);
        // 16-value sub-blocks, step amax/31 (62 steps over [-amax, amax]); the 8-bit scale, rounded up, adds at most
        // one unit d = (super-block amax / 31) / 127 to the step, half of it to the error: 1.3e-4 amax, so 1.5e-4
        assertWithinSteps(DType.Q6_K, x, y, 16, 62, 256, 1.5e-4);
        assertThat(relativeRms(x, y)).as("Q6_K relative RMS error").isLessThan(0.03);
    }

    static double relativeRms(float[] x, float[] y) {
        double num = 0, den = 0;
        for (int i = 0; i < x.length; i++) {
            num += (x[i] - y[i]) * (double) (x[i] - y[i]);
            den += x[i] * (double) x[i];
        }
        return Math.sqrt(num / den);
    }
}
