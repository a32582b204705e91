package io.engram.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Our tokenizer against Hugging Face's Rust {@code tokenizers} (through DJL's Java binding, offline) on the real
 * tokenizer files in {@code shared/}: ids with and without special tokens, and decoded text, must be identical.
 */
class TokenizerReferenceTest {

    static final Path SHARED = Path.of(System.getProperty("engram.shared.dir", "../shared"));
    static final long SEED = 20251123L;
    static final int RANDOM_STRINGS = 3000;
    /** DJL would otherwise truncate to tokenizer_config.json's model_max_length (512 for stories260K). */
    static final Map<String, String> NO_TRUNCATION = Map.of("truncation", "false", "padding", "false");

    static Stream<Arguments> tokenizers() {
        return Stream.of(
                Arguments.of("qwen", SHARED.resolve("tokenizers/qwen")),
                Arguments.of("llama3", SHARED.resolve("tokenizers/llama3")),
                Arguments.of("mistral", SHARED.resolve("tokenizers/mistral")),
                Arguments.of("smollm2", SHARED.resolve("tokenizers/smollm2")),
                Arguments.of("stories260K", SHARED.resolve("models/stories260K-hf")));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("tokenizers")
    void idsAndTextMatchHuggingFaceTokenizers(String name, Path dir) throws IOException {
        assumeTrue(Files.isDirectory(dir), "no tokenizer at " + dir + "; skipping");
        HfTokenizer ours = Tokenizers.fromHuggingFace(dir);
        try (HuggingFaceTokenizer ref =
                HuggingFaceTokenizer.newInstance(dir.resolve("tokenizer.json"), NO_TRUNCATION)) {
            List<String> corpus = new ArrayList<>(TokenizerCorpus.varied());
            int fixed = corpus.size();
            corpus.addAll(TokenizerCorpus.random(
                    SEED,
                    RANDOM_STRINGS,
                    ours.vocabSize(),
                    id -> ref.decode(new long[] {id}, false),
                    addedTokens(dir)));
            List<String> failures = new ArrayList<>();
            long totalIds = 0;
            for (int i = 0; i < corpus.size(); i++) {
                String text = corpus.get(i);
                for (boolean special : new boolean[] {false, true}) {
                    long[] expected = ref.encode(text, special, false).getIds();
                    int[] actual = ours.encode(text, special);
                    totalIds += expected.length;
                    if (!Arrays.equals(
                            actual,
                            Arrays.stream(expected).mapToInt(v -> (int) v).toArray())) {
                        failures.add("#%d addSpecial=%s %s%n   %s"
                                .formatted(
                                        i,
                                        special,
                                        TokenizerCorpus.abbreviate(TokenizerCorpus.escape(text)),
                                        TokenizerCorpus.diff(
                                                actual,
                                                Arrays.stream(expected)
                                                        .mapToInt(v -> (int) v)
                                                        .toArray())));
                    }
                    for (boolean skip : new boolean[] {false, true}) {
                        String refText = ref.decode(expected, skip);
                        String ourText = ours.decode(
                                Arrays.stream(expected).mapToInt(v -> (int) v).toArray(), skip);
                        if (!ourText.equals(refText)) {
                            failures.add("#%d decode(skip=%s) of %s%n   ours %s%n   hf   %s"
                                    .formatted(
                                            i,
                                            skip,
                                            TokenizerCorpus.abbreviate(TokenizerCorpus.escape(text)),
                                            TokenizerCorpus.abbreviate(TokenizerCorpus.escape(ourText)),
                                            TokenizerCorpus.abbreviate(TokenizerCorpus.escape(refText))));
                        }
                    }
                }
            }
            System.out.printf(
                    "[%s] compared %d strings (%d fixed + %d random, seed %d), %d reference ids, %d failures%n",
                    name, corpus.size(), fixed, corpus.size() - fixed, SEED, totalIds, failures.size());
            assertThat(failures)
                    .as(
                            "%s vs HF tokenizers (seed %d); first failures:%n%s",
                            name, SEED, String.join("\n", failures.subList(0, Math.min(10, failures.size()))))
                    .isEmpty();
        }
    }

    static List<String> addedTokens(Path dir) throws IOException {
        JsonNode root =
                new ObjectMapper().readTree(dir.resolve("tokenizer.json").toFile());
        List<String> out = new ArrayList<>();
        root.path("added_tokens").forEach(t -> out.add(t.path("content").asText()));
        return out;
    }
}
