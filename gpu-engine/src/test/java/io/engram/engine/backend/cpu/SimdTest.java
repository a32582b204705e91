package io.engram.engine.backend.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class SimdTest {
    @Test
    void expNonPositiveIsWithinFiveTenMillionthsOfMathExp() {
        SplittableRandom r = new SplittableRandom(3);
        double worst = 0;
        for (int i = 0; i < 1_000_000; i++) {
            float x = (float) (-r.nextDouble() * 90);
            double e = Math.exp(x);
            float ours = Simd.expNonPositive(x);
            if (e > 1e-30) {
                worst = Math.max(worst, Math.abs(ours - e) / e);
            } else {
                assertThat(ours).isLessThan(1e-29f);
            }
        }
        for (float x : new float[] {0f, -0f, -1e-8f, -0.3465736f, -0.3465737f, -87f, -86.9f}) {
            assertThat(Math.abs(Simd.expNonPositive(x) - Math.exp(x)) / Math.exp(x))
                    .as("x=%s", x)
                    .isLessThan(5e-7);
        }
        assertThat(Simd.expNonPositive(-100f)).isZero();
        assertThat(worst).as("worst relative error").isLessThan(5e-7);
    }

    @Test
    void vectorExpEqualsTheScalarExpBitForBit() {
        SplittableRandom r = new SplittableRandom(9);
        int lanes = Simd.F.length();
        float[] special = {
            0f,
            -0f,
            -1e-8f,
            -0.3465736f,
            -0.3465737f,
            -0.5f,
            -1.5f,
            -2.5f,
            -86.9f,
            -87f,
            -87.00001f,
            -100f,
            Float.NEGATIVE_INFINITY,
            -Float.MIN_VALUE,
            Float.NaN
        };
        for (int round = 0; round < 20_000; round++) {
            float[] x = new float[lanes];
            for (int i = 0; i < lanes; i++) {
                x[i] = round == 0 && i < special.length
                        ? special[i]
                        : round < 10 ? special[r.nextInt(special.length)] : (float) (-r.nextDouble() * 95);
            }
            float[] got = new float[lanes];
            Simd.expNonPositive(FloatVector.fromArray(Simd.F, x, 0)).intoArray(got, 0);
            for (int i = 0; i < lanes; i++) {
                assertThat(Float.floatToRawIntBits(got[i]))
                        .as("x=%s", x[i])
                        .isEqualTo(Float.floatToRawIntBits(Simd.expNonPositive(x[i])));
            }
        }
    }

    @Test
    void expOfAnySignIsCloseToMathExpAndTheVectorEqualsTheScalar() {
        SplittableRandom r = new SplittableRandom(13);
        int lanes = Simd.F.length();
        double worst = 0;
        for (int round = 0; round < 20_000; round++) {
            float[] x = new float[lanes];
            for (int i = 0; i < lanes; i++) {
                x[i] = round == 0 && i < 6
                        ? new float[] {88f, 88.1f, Float.POSITIVE_INFINITY, 50f, -87.5f, Float.NaN}[i]
                        : (float) (r.nextDouble() * 175 - 87);
            }
            float[] got = new float[lanes];
            Simd.exp(FloatVector.fromArray(Simd.F, x, 0)).intoArray(got, 0);
            for (int i = 0; i < lanes; i++) {
                float scalar = Simd.exp(x[i]);
                assertThat(Float.floatToRawIntBits(got[i])).as("x=%s", x[i]).isEqualTo(Float.floatToRawIntBits(scalar));
                if (x[i] >= -87f && x[i] <= 88f) {
                    worst = Math.max(worst, Math.abs(scalar - Math.exp(x[i])) / Math.exp(x[i]));
                }
            }
        }
        assertThat(worst).as("worst relative error").isLessThan(5e-7);
        assertThat(Simd.exp(89f)).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(Simd.exp(-88f)).isZero();
    }

    @Test
    void dotIsTheSameForEveryLengthAcrossScalarAndVectorPaths() {
        SplittableRandom r = new SplittableRandom(5);
        for (int n = 0; n < 200; n++) {
            float[] a = new float[n + 3];
            float[] b = new float[n + 5];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) r.nextGaussian();
            }
            for (int i = 0; i < b.length; i++) {
                b[i] = (float) r.nextGaussian();
            }
            double ref = 0;
            for (int i = 0; i < n; i++) {
                ref += (double) a[3 + i] * b[5 + i];
            }
            assertThat((double) Simd.dot(a, 3, b, 5, n))
                    .as("n=%d", n)
                    .isCloseTo(ref, org.assertj.core.data.Offset.offset(1e-4 * Math.max(1, Math.sqrt(n))));
        }
    }
}
