package io.engram.engine.model.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Checks the llama.cpp harness itself before anything is compared with it: on the real stories260K GGUF, greedy
 * decoding from BOS must reproduce the 256 reference ids of {@code shared/models/stories260K/PROVENANCE.md} (produced
 * by an independent numpy re-implementation of llama2.c), through both the C API path and the binding's server loop.
 */
class LlamaCppReferenceTest {
    /** stories260K/PROVENANCE.md, "Reference greedy output" (BOS start, temperature 0, 256 positions). */
    static final int[] STORIES_REFERENCE = {
        403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408,
                419, 292, 411,
        322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266,
                267, 337, 335,
        312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13, 438, 310, 439, 419, 357, 336, 432, 313, 438, 310,
                432, 278, 316,
        439, 419, 298, 414, 267, 265, 282, 295, 433, 426, 436, 317, 286, 296, 418, 269, 279, 292, 416, 439, 413, 409,
                416, 327, 263,
        415, 294, 267, 400, 426, 338, 336, 432, 313, 442, 391, 267, 337, 335, 364, 420, 268, 388, 432, 398, 359, 280,
                303, 439, 413,
        272, 417, 264, 312, 426, 436, 13, 438, 310, 286, 296, 418, 269, 279, 292, 416, 439, 413, 409, 416, 327, 263,
                415, 294, 267,
        400, 426, 338, 336, 432, 313, 442, 439, 423, 262, 304, 420, 422, 432, 317, 426, 359, 279, 292, 416, 439, 413,
                409, 416, 327,
        263, 415, 294, 267, 400, 426, 436, 13, 438, 310, 279, 292, 416, 439, 413, 391, 267, 281, 421, 427, 311, 357,
                432, 384, 358,
        336, 432, 313, 442, 439, 423, 262, 304, 420, 422, 432, 357, 426, 359, 279, 292, 416, 439, 413, 409, 416, 327,
                263, 415, 294,
        267, 400, 426, 436, 320, 285, 357, 336, 432, 313, 455, 289, 439, 413, 263, 304, 420, 422, 432, 317, 426, 410,
                448, 411, 280,
        303, 281, 421, 427, 364, 426
    };

    static Path stories(String variant) {
        Path p = TinyGgufModels.storiesGguf(variant);
        Assumptions.assumeTrue(Files.isRegularFile(p), "no model at " + p + "; skipping");
        return p;
    }

    @Test
    void greedyIdsFromBosReproduceTheStories260kReference() {
        assertThat(STORIES_REFERENCE).hasSize(256);
        try (LlamaCppReference ref = LlamaCppReference.open(stories("f32"), 512)) {
            int[] ids = ref.greedy(new int[] {1}, 256);
            assertThat(ids).as("llama.cpp greedy ids from BOS").containsExactly(STORIES_REFERENCE);
        }
    }

    @Test
    void timedGreedyGeneratesWhatGreedyDoesAndTimesPrefillAndStepsApart() {
        try (LlamaCppReference ref = LlamaCppReference.open(stories("f32"), 64)) {
            int[] prompt = {1, 403, 407, 411};
            LlamaCppReference.Timing t = ref.timedGreedy(prompt, 8);
            assertThat(t.tokens()).containsExactly(ref.greedy(prompt, 9));
            assertThat(t.steps()).isEqualTo(8);
            assertThat(t.prefillNanos()).isPositive();
            assertThat(t.decodeNanos()).isPositive();
            assertThatThrownBy(() -> ref.timedGreedy(prompt, 60))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("fit the context of 64");
        }
    }

    @Test
    void bindingServerLoopReproducesTheReferenceText() {
        Path f32 = stories("f32");
        List<String> pieces = LlamaCppReference.completeText(f32, new int[] {1}, 256, false);
        String expected = LlamaCppReference.decode(f32, STORIES_REFERENCE);
        assertThat(pieces).hasSize(256);
        assertThat(String.join("", pieces)).isEqualTo(expected);
        assertThat(expected).startsWith(" Once upon a time, there was a little girl named Lily.");
    }

    @Test
    void tokenizationMatchesTheReferencePrefix() {
        String text = "Once upon a time, there was a little girl named Lily.";
        int[] expected = Arrays.copyOf(STORIES_REFERENCE, 15);
        try (LlamaCppReference ref = LlamaCppReference.open(stories("f32"), 64)) {
            int[] withBos = ref.tokenize(text, true, false);
            assertThat(withBos[0]).isEqualTo(1);
            assertThat(Arrays.copyOfRange(withBos, 1, withBos.length)).containsExactly(expected);
        }
        assertThat(LlamaCppReference.encode(stories("f32"), text)).containsExactly(expected);
    }
}
