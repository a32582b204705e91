package io.engram.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

/**
 * The logits of a session's last memory token score the first token of its next event: they outlive a question (a
 * transient section), are what a restart stores (bfloat16 values), and are dropped when the memory itself is cut.
 */
class CarriedLogitsTest {

    private static KvCache cache(int tokens) {
        KvCache c = new KvCache(new CpuBackend(1, false), 1, 4, 8);
        c.append(new int[tokens], new int[tokens], new long[tokens]);
        return c;
    }

    private static double surprise(float[] logits, int token) {
        double max = Double.NEGATIVE_INFINITY;
        for (float f : logits) {
            max = Math.max(max, f);
        }
        double sum = 0;
        for (float f : logits) {
            sum += Math.exp(f - max);
        }
        return Math.log(sum) + max - logits[token];
    }

    @Test
    void theMemorysCarryOutlivesAQuestionAndIsRoundedToWhatARestartStores() {
        KvCache c = cache(5);
        float[] memory = {0.1234567f, 2.7182817f, -1.0000001f, 0.5f};
        c.carryLogits(memory);
        float[] stored = c.carriedLogits();
        for (int i = 0; i < memory.length; i++) {
            assertThat(Float.floatToRawIntBits(stored[i]) & 0xFFFF)
                    .as("a bfloat16 value")
                    .isZero();
            assertThat(stored[i]).isCloseTo(memory[i], org.assertj.core.data.Offset.offset(Math.abs(memory[i]) / 128));
        }
        assertThat(c.scoreNext(1)).isCloseTo((float) surprise(stored, 1), org.assertj.core.data.Offset.offset(1e-5f));

        c.beginTransient(); // a question: its first token is scored by the memory's carry, later ones by its own
        assertThat(c.scoreNext(2)).isCloseTo((float) surprise(stored, 2), org.assertj.core.data.Offset.offset(1e-5f));
        c.append(new int[3], new int[3], new long[3]);
        c.carryLogits(new float[] {9f, 0f, 0f, 0f});
        assertThat(c.scoreNext(0))
                .isCloseTo(
                        (float) surprise(new float[] {9f, 0f, 0f, 0f}, 0), org.assertj.core.data.Offset.offset(1e-5f));
        c.truncate(5); // the answer is taken back: the memory's carry is still there
        assertThat(c.carriedLogits()).containsExactly(stored);

        KvCache restored = cache(5);
        assertThat(restored.scoreNext(1)).isNaN();
        restored.restoreCarriedLogits(c.carriedLogits());
        assertThat(restored.scoreNext(1)).isEqualTo(c.scoreNext(1));

        c.truncate(3); // the memory itself is cut: nothing scores the next token any more
        assertThat(c.carriedLogits()).isNull();
        assertThat(c.scoreNext(1)).isNaN();
    }
}
