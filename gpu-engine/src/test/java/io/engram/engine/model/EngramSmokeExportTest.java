package io.engram.engine.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.engine.backend.Backend;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.tokenizer.Tokenizer;
import io.engram.engine.tokenizer.chat.ChatMessage;
import io.engram.engine.tokenizer.chat.ChatTemplate;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The files our training pipeline exports (training/engram_train: tokenizer.py, train.py, gguf.py), as committed from a
 * CPU smoke run in src/test/resources/engram-smoke: the engine reads them the way Hugging Face does. Logits of the
 * safetensors folder are checked against transformers in {@link ReferenceGoldenTest}; here the GGUF copy must give
 * the same logits (its Q/K are permuted to GGUF's interleaved RoPE layout, so a wrong permutation shows), and the
 * tokenizer and chat template must match HF tokenizers and jinja2 (reference.json, written by the same script run).
 */
class EngramSmokeExportTest {

    static Path exportDir() throws Exception {
        return Path.of(EngramSmokeExportTest.class
                        .getResource("/engram-smoke/config.json")
                        .toURI())
                .getParent();
    }

    @Test
    void ggufCopyGivesTheSameLogitsAsTheSafetensorsFolder() throws Exception {
        Path dir = exportDir();
        int[] prompt = new int[1];
        double worst = ggufVersusSafetensors(
                dir, "The pass key is 71432. Remember it.\n\nQuestion: What is the pass key?\nAnswer:", prompt);
        System.out.printf("engram-smoke GGUF vs safetensors: max |dlogit| %.2e over %d tokens%n", worst, prompt[0]);
        assertThat(worst).as("same BF16 weights through two loaders").isLessThan(1e-4);
    }

    /**
     * Max |logit difference| at the last token of {@code text} between a model folder's safetensors and its GGUF copy
     * (engram-tiny.bf16.gguf); {@code tokens[0]} receives the prompt's length.
     */
    static double ggufVersusSafetensors(Path dir, String text, int[] tokens) {
        int[] prompt;
        try (Model hf = Model.openHuggingFace(dir)) {
            prompt = hf.tokenizer().encode(text, true);
        }
        tokens[0] = prompt.length;
        float[] a = lastLogits(Model.openHuggingFace(dir), prompt);
        float[] b = lastLogits(Model.open(dir.resolve("engram-tiny.bf16.gguf")), prompt);
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
        }
        return worst;
    }

    private static float[] lastLogits(Model model, int[] prompt) {
        try (model;
                Backend backend = new CpuBackend(2, false)) {
            Transformer t =
                    new Transformer(model.config(), model.weights(), backend, new EngineSettings(16, 64, 2, false));
            KvCache cache = t.newCache();
            float[][] last = new float[1][];
            t.forward(
                    cache, prompt, null, new FullAttention(), Transformer.Logits.LAST, (seq, l) -> last[0] = l.clone());
            return last[0];
        }
    }

    @Test
    void tokenizerMatchesHuggingFaceTokenizersInBothLayouts() throws Exception {
        JsonNode ref = reference();
        try (Model hf = Model.openHuggingFace(exportDir());
                Model gguf = Model.open(exportDir().resolve("engram-tiny.bf16.gguf"))) {
            Tokenizer a = hf.tokenizer();
            Tokenizer b = gguf.tokenizer();
            for (JsonNode e : ref.get("encode")) {
                String text = e.get("text").asText();
                assertThat(a.encode(text, true))
                        .as("tokenizer.json, with BOS: %s", text)
                        .containsExactly(ints(e.get("ids")));
                assertThat(a.encode(text, false))
                        .as("tokenizer.json: %s", text)
                        .containsExactly(ints(e.get("ids_no_special")));
                assertThat(b.encode(text, false))
                        .as("GGUF vocabulary: %s", text)
                        .containsExactly(ints(e.get("ids_no_special")));
            }
        }
    }

    @Test
    void questionAnswerChatTemplateRendersLikeJinja() throws Exception {
        JsonNode chat = reference().get("chat");
        List<ChatMessage> messages = new ArrayList<>();
        for (JsonNode m : chat.get("messages")) {
            messages.add(
                    new ChatMessage(m.get("role").asText(), m.get("content").asText()));
        }
        ChatTemplate t = ChatTemplate.fromTokenizerConfig(exportDir().resolve("tokenizer_config.json"));
        assertThat(t.toString()).contains("QUESTION_ANSWER");
        assertThat(t.render(messages, true)).isEqualTo(chat.get("render").asText());
    }

    private static JsonNode reference() throws Exception {
        return new ObjectMapper().readTree(Files.readString(exportDir().resolve("reference.json")));
    }

    private static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = a.get(i).asInt();
        }
        return r;
    }
}
