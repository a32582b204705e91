package io.engram.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link StreamingDecoder} on the real tokenizers (deltas concatenate to {@code decode(all)}, and no delta ends inside
 * a character), the Qwen check from {@code shared/tokenizers/PROVENANCE.md}, and encode throughput on ~1 MB (printed,
 * not asserted).
 */
class TokenizerStreamingAndSpeedTest {

    static final Path SHARED = TokenizerReferenceTest.SHARED;

    static Stream<String> names() {
        return Stream.of(
                "tokenizers/qwen",
                "tokenizers/llama3",
                "tokenizers/mistral",
                "tokenizers/smollm2",
                "models/stories260K-hf");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("names")
    void streamedDeltasConcatenateToDecode(String name) {
        Path dir = SHARED.resolve(name);
        assumeTrue(Files.isDirectory(dir), "no tokenizer at " + dir + "; skipping");
        Tokenizer t = Tokenizers.fromHuggingFace(dir);
        List<String> corpus = new ArrayList<>(TokenizerCorpus.varied());
        corpus.addAll(TokenizerCorpus.random(3, 300, t.vocabSize(), t::tokenText, List.of()));
        int checked = 0;
        for (String text : corpus) {
            int[] ids = t.encode(text, true);
            for (boolean skip : new boolean[] {false, true}) {
                StreamingDecoder stream = new StreamingDecoder(t, skip);
                StringBuilder out = new StringBuilder();
                for (int id : ids) {
                    String delta = stream.accept(id);
                    assertThat(delta)
                            .as("delta must not end inside a character")
                            .doesNotEndWith("\uFFFD");
                    out.append(delta);
                }
                out.append(stream.flush());
                assertThat(out.toString())
                        .as("%s stream of %s", name, TokenizerCorpus.escape(text))
                        .isEqualTo(t.decode(ids, skip));
                checked++;
            }
        }
        System.out.printf("[%s] streamed %d id sequences%n", name, checked);
    }

    @Test
    void streamHoldsBackPartialCharacters() {
        Path dir = SHARED.resolve("tokenizers/mistral");
        assumeTrue(Files.isDirectory(dir), "no tokenizer at " + dir + "; skipping");
        Tokenizer t = Tokenizers.fromHuggingFace(dir);
        int[] ids = t.encode("a \uD80C\uDC00", false); // U+13000 has no piece: four <0x..> byte tokens
        StreamingDecoder stream = new StreamingDecoder(t, true);
        List<String> deltas = new ArrayList<>();
        for (int id : ids) {
            deltas.add(stream.accept(id));
        }
        assertThat(String.join("", deltas)).isEqualTo("a \uD80C\uDC00");
        assertThat(deltas.subList(deltas.size() - 4, deltas.size() - 1)).containsOnly("");
        assertThat(deltas.getLast()).isEqualTo("\uD80C\uDC00");
        assertThat(t.tokenText(t.tokenId("▁world").orElseThrow())).isEqualTo(" world");
    }

    @Test
    void qwenProvenanceIds() {
        Path dir = SHARED.resolve("tokenizers/qwen");
        assumeTrue(Files.isDirectory(dir), "no tokenizer at " + dir + "; skipping");
        Tokenizer t = Tokenizers.fromHuggingFace(dir);
        assertThat(t.encode("Hello, world! The vault code is 7481.", false))
                .containsExactly(9707, 11, 1879, 0, 576, 34584, 2038, 374, 220, 22, 19, 23, 16, 13);
        assertThat(t.encode("Hello", true)).containsExactly(9707); // Qwen's post-processor adds nothing
        assertThat(t.bosId()).isEmpty();
        assertThat(t.eosId()).hasValue(151645);
        assertThat(t.tokenId("<|im_start|>")).hasValue(151644);
        assertThat(t.isSpecial(151644)).isTrue();
        assertThat(t.isSpecial(151657))
                .as("<tool_call> is an added token but not special")
                .isFalse();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("names")
    void encodeSpeedOnOneMegabyte(String name) {
        Path dir = SHARED.resolve(name);
        assumeTrue(Files.isDirectory(dir), "no tokenizer at " + dir + "; skipping");
        Tokenizer t = Tokenizers.fromHuggingFace(dir);
        String text = megabyteText();
        int bytes = text.getBytes(StandardCharsets.UTF_8).length;
        t.encode(text.substring(0, 100_000), false); // warm-up
        long best = Long.MAX_VALUE;
        int n = 0;
        for (int run = 0; run < 3; run++) {
            long start = System.nanoTime();
            n = t.encode(text, false).length;
            best = Math.min(best, System.nanoTime() - start);
        }
        System.out.printf(
                "[speed] %-22s %,d bytes -> %,d tokens, best of 3: %.0f ms = %.2f MB/s%n",
                name, bytes, n, best / 1e6, bytes / 1e6 / (best / 1e9));
        assertThat(n).isPositive();
    }

    /** ~1 MB of mixed prose, code, numbers and non-Latin text, built deterministically. */
    static String megabyteText() {
        List<String> parts = TokenizerCorpus.varied();
        StringBuilder sb = new StringBuilder(1_100_000);
        java.util.Random rnd = new java.util.Random(42);
        while (sb.length() < 1_000_000) {
            sb.append(parts.get(rnd.nextInt(parts.size()))).append(rnd.nextInt(3) == 0 ? "\n" : " ");
        }
        return sb.toString();
    }
}
