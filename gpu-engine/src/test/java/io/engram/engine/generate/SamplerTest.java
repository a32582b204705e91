package io.engram.engine.generate;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SamplerTest {
    static final float[] LOGITS = {1.0f, 3.0f, 2.5f, -1.0f, 3.0f, 0.0f};

    @Test
    void greedyPicksTheFirstMaximumAndReportsExactLogProb() {
        Sampler.Choice c = new Sampler(SamplingOptions.greedy(1)).next(LOGITS);
        assertThat(c.token()).isEqualTo(1);
        double z = 0;
        for (float l : LOGITS) {
            z += Math.exp(l);
        }
        assertThat(c.logProb()).isCloseTo(3.0 - Math.log(z), org.assertj.core.data.Offset.offset(1e-12));
        assertThat(c.entropy()).isPositive();
    }

    @Test
    void topKOfOneAndTinyTopPAreGreedy() {
        for (long seed = 0; seed < 20; seed++) {
            assertThat(new Sampler(SamplingOptions.greedy(1).withSampling(1.5, 1, 1, seed))
                            .next(LOGITS)
                            .token())
                    .isEqualTo(1);
            assertThat(new Sampler(SamplingOptions.greedy(1).withSampling(1.5, 0, 1e-6, seed))
                            .next(LOGITS)
                            .token())
                    .isEqualTo(1);
        }
    }

    @Test
    void sameSeedSameTokensDifferentSeedsDiffer() {
        SamplingOptions o = SamplingOptions.greedy(1).withSampling(1.0, 0, 1, 7);
        Sampler a = new Sampler(o);
        Sampler b = new Sampler(o);
        Sampler c = new Sampler(o.withSampling(1.0, 0, 1, 8));
        int diff = 0;
        for (int i = 0; i < 200; i++) {
            int x = a.next(LOGITS).token();
            assertThat(b.next(LOGITS).token()).isEqualTo(x);
            diff += c.next(LOGITS).token() != x ? 1 : 0;
        }
        assertThat(diff).isGreaterThan(20);
    }

    @Test
    void samplingFrequenciesFollowTheTemperedSoftmaxWithTopK() {
        double t = 0.7;
        Sampler s = new Sampler(SamplingOptions.greedy(1).withSampling(t, 3, 1, 99));
        int[] counts = new int[LOGITS.length];
        int n = 60_000;
        for (int i = 0; i < n; i++) {
            counts[s.next(LOGITS).token()]++;
        }
        // top-3: ids 1, 4 (3.0 each) and 2 (2.5)
        double z = 2 * Math.exp(3.0 / t) + Math.exp(2.5 / t);
        assertThat(counts[0] + counts[3] + counts[5]).isZero();
        assertThat(counts[2] / (double) n).isCloseTo(Math.exp(2.5 / t) / z, org.assertj.core.data.Offset.offset(0.01));
        assertThat(counts[1] / (double) n).isCloseTo(Math.exp(3.0 / t) / z, org.assertj.core.data.Offset.offset(0.01));
    }

    @Test
    void invalidOptionsAreRefusedWithTheRange() {
        assertThatThrownBy(() -> SamplingOptions.greedy(1).withSampling(-1, 0, 1, 0))
                .hasMessageContaining("temperature");
        assertThatThrownBy(() -> SamplingOptions.greedy(1).withSampling(1, 0, 0, 0))
                .hasMessageContaining("(0, 1]");
        assertThatThrownBy(() -> SamplingOptions.greedy(1).withStops(List.of(), List.of("")))
                .hasMessageContaining("empty");
        assertThat(new SplittableRandom(1).nextInt()).isEqualTo(new SplittableRandom(1).nextInt());
    }
}
