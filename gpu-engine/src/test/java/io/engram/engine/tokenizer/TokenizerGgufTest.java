package io.engram.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * GGUF-embedded vocabularies: the stories260K GGUF (SentencePiece scores, no merges) must tokenize exactly like Hugging
 * Face {@code tokenizers} on the same model's {@code tokenizer.json} (its PROVENANCE shows HF = llama.cpp on 42,101
 * strings), and a byte-level GGUF vocabulary built from Qwen's {@code tokenizer.json} must behave like the HF file.
 */
class TokenizerGgufTest {

    static final Path SHARED = TokenizerReferenceTest.SHARED;

    @Test
    void stories260kGgufMatchesHuggingFaceOnSameModel() throws IOException {
        Path gguf = SHARED.resolve("models/stories260K-gguf/stories260K-f32.gguf");
        Path hfDir = SHARED.resolve("models/stories260K-hf");
        assumeTrue(
                Files.isRegularFile(gguf) && Files.isDirectory(hfDir),
                "no stories260K GGUF/HF at " + SHARED + "; skipping");
        GgufVocab vocab = GgufTestMetadata.vocab(GgufTestMetadata.read(gguf));
        assertThat(vocab.model()).isEqualTo("llama");
        assertThat(vocab.merges()).isEmpty();
        Tokenizer ours = Tokenizers.fromGguf(vocab);
        assertThat(ours.vocabSize()).isEqualTo(512);
        assertThat(ours.bosId()).hasValue(1);
        assertThat(ours.eosId()).hasValue(2);
        try (HuggingFaceTokenizer ref = HuggingFaceTokenizer.newInstance(
                hfDir.resolve("tokenizer.json"), TokenizerReferenceTest.NO_TRUNCATION)) {
            List<String> corpus = new ArrayList<>(TokenizerCorpus.varied());
            corpus.addAll(TokenizerCorpus.random(
                    TokenizerReferenceTest.SEED + 1,
                    5000,
                    ours.vocabSize(),
                    id -> ref.decode(new long[] {id}, false),
                    List.of("<s>", "</s>", "<unk>")));
            List<String> failures = new ArrayList<>();
            for (String text : corpus) {
                for (boolean special : new boolean[] {false, true}) {
                    int[] expected = Arrays.stream(
                                    ref.encode(text, special, false).getIds())
                            .mapToInt(v -> (int) v)
                            .toArray();
                    int[] actual = ours.encode(text, special);
                    if (!Arrays.equals(actual, expected)) {
                        failures.add("addSpecial=%s %s: %s"
                                .formatted(
                                        special,
                                        TokenizerCorpus.abbreviate(TokenizerCorpus.escape(text)),
                                        TokenizerCorpus.diff(actual, expected)));
                    }
                    for (boolean skip : new boolean[] {false, true}) {
                        String refText = ref.decode(
                                Arrays.stream(expected).asLongStream().toArray(), skip);
                        if (!ours.decode(expected, skip).equals(refText)) {
                            failures.add("decode(skip=%s) of %s: ours %s, hf %s"
                                    .formatted(
                                            skip,
                                            TokenizerCorpus.escape(text),
                                            TokenizerCorpus.escape(ours.decode(expected, skip)),
                                            TokenizerCorpus.escape(refText)));
                        }
                    }
                }
            }
            System.out.printf(
                    "[stories260K GGUF vs HF tokenizer.json] compared %d strings, %d failures%n",
                    corpus.size(), failures.size());
            assertThat(failures)
                    .as("first failures:%n%s", String.join("\n", failures.subList(0, Math.min(10, failures.size()))))
                    .isEmpty();
        }
    }

    @Test
    void byteLevelGgufVocabBehavesLikeItsTokenizerJson() throws IOException {
        Path dir = SHARED.resolve("tokenizers/qwen");
        assumeTrue(Files.isDirectory(dir), "no tokenizer at " + dir + "; skipping");
        HfTokenizer hf = Tokenizers.fromHuggingFace(dir);
        GgufVocab vocab = ggufLike(dir, hf, "qwen2");
        Tokenizer gguf = Tokenizers.fromGguf(vocab);
        List<String> corpus = new ArrayList<>(TokenizerCorpus.varied());
        corpus.addAll(TokenizerCorpus.random(
                7, 1000, hf.vocabSize(), hf::tokenText, List.of("<|im_start|>", "<|im_end|>", "<think>")));
        int compared = 0;
        for (String text : corpus) {
            // the GGUF path has no normalizer (llama.cpp applies none for qwen2), so compare on NFC input
            String nfc = java.text.Normalizer.normalize(text, java.text.Normalizer.Form.NFC);
            assertThat(gguf.encode(nfc, false)).as(TokenizerCorpus.escape(nfc)).containsExactly(hf.encode(nfc, false));
            compared++;
        }
        System.out.printf("[qwen as GGUF gpt2/qwen2 vocab vs its tokenizer.json] compared %d strings%n", compared);
        assertThat(gguf.decode(hf.encode("Hello, world! The vault code is 7481.", false), false))
                .isEqualTo("Hello, world! The vault code is 7481.");
    }

    @Test
    void unknownGgufModelOrPreTokenizerIsRefused() {
        GgufVocab t5 = new GgufVocab(
                "t5", null, List.of("a"), new float[] {0f}, null, List.of(), null, null, null, false, false, null);
        assertThatThrownBy(() -> Tokenizers.fromGguf(t5))
                .isInstanceOf(UnsupportedTokenizerException.class)
                .hasMessageContaining("tokenizer.ggml.model")
                .hasMessageContaining("'t5'")
                .hasMessageContaining("llama, gpt2");
        GgufVocab odd = new GgufVocab(
                "gpt2", "jais", List.of("a"), null, null, List.of(), null, null, null, false, false, null);
        assertThatThrownBy(() -> Tokenizers.fromGguf(odd))
                .isInstanceOf(UnsupportedTokenizerException.class)
                .hasMessageContaining("tokenizer.ggml.pre")
                .hasMessageContaining("'jais'");
        assertThatThrownBy(() -> new GgufVocab(
                        "llama",
                        null,
                        List.of("a", "b"),
                        new float[] {0f},
                        null,
                        List.of(),
                        null,
                        null,
                        null,
                        false,
                        false,
                        null))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("scores has 1 entries for 2 tokens");
        GgufVocab noScores =
                new GgufVocab("llama", null, List.of("a"), null, null, List.of(), null, null, null, false, false, null);
        assertThatThrownBy(() -> Tokenizers.fromGguf(noScores))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("tokenizer.ggml.scores is required");
    }

    /** What a GGUF converter would write for this tokenizer: tokens by id, merges as strings, token types. */
    static GgufVocab ggufLike(Path dir, HfTokenizer hf, String pre) throws IOException {
        var root = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(dir.resolve("tokenizer.json").toFile());
        List<String> tokens = new ArrayList<>();
        int[] types = new int[hf.vocabSize()];
        for (int id = 0; id < hf.vocabSize(); id++) {
            tokens.add(hf.tokenContent(id));
            types[id] = GgufVocab.TYPE_NORMAL;
        }
        for (var t : root.path("added_tokens")) {
            types[t.get("id").asInt()] =
                    t.path("special").asBoolean() ? GgufVocab.TYPE_CONTROL : GgufVocab.TYPE_USER_DEFINED;
        }
        List<String> merges = new ArrayList<>();
        for (var m : root.path("model").path("merges")) {
            merges.add(m.isArray() ? m.get(0).asText() + " " + m.get(1).asText() : m.asText());
        }
        return new GgufVocab(
                "gpt2", pre, tokens, null, types, merges, null, hf.eosId().orElse(0), null, false, false, false);
    }
}
