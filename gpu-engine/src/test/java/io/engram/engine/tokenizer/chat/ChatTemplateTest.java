package io.engram.engine.tokenizer.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.engine.tokenizer.Tokenizer;
import io.engram.engine.tokenizer.Tokenizers;
import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.junit.jupiter.api.Test;

/**
 * {@link ChatTemplate} against Python jinja2 renders of the real templates ({@code goldens.json}, written by {@code
 * src/test/reference/render_chat_templates.py}), plus refusal of templates we do not reproduce.
 */
class ChatTemplateTest {

    static final Path SHARED = Path.of(System.getProperty("engram.shared.dir", "../shared"));

    static Path config(String template) throws URISyntaxException {
        return switch (template) {
            case "qwen3" -> SHARED.resolve("tokenizers/qwen/tokenizer_config.json");
            case "llama3" -> SHARED.resolve("tokenizers/llama3/tokenizer_config.json");
            default ->
                Path.of(Objects.requireNonNull(ChatTemplateTest.class.getResource(
                                "/tokenizer/chat/" + template + "/tokenizer_config.json"))
                        .toURI());
        };
    }

    @Test
    void rendersExactlyLikeJinja2() throws IOException, URISyntaxException {
        JsonNode goldens;
        try (InputStream in = ChatTemplateTest.class.getResourceAsStream("/tokenizer/chat/goldens.json")) {
            goldens = new ObjectMapper().readTree(in).get("goldens");
        }
        Map<String, ChatTemplate> templates = new HashMap<>();
        Map<String, Integer> perTemplate = new HashMap<>();
        List<String> failures = new ArrayList<>();
        for (JsonNode g : goldens) {
            String name = g.get("template").asText();
            Path config = config(name);
            if (!Files.isRegularFile(config)) {
                System.out.println("no tokenizer_config at " + config + "; skipping its goldens");
                continue;
            }
            ChatTemplate template = templates.computeIfAbsent(name, n -> ChatTemplate.fromTokenizerConfig(config));
            if (g.get("kwargs").has("enable_thinking")) {
                template = template.withEnableThinking(
                        g.get("kwargs").get("enable_thinking").asBoolean());
            }
            List<ChatMessage> messages = new ArrayList<>();
            g.get("messages")
                    .forEach(m -> messages.add(new ChatMessage(
                            m.get("role").asText(), m.get("content").asText())));
            String rendered =
                    template.render(messages, g.get("add_generation_prompt").asBoolean());
            String expected = g.get("rendered").asText();
            if (!rendered.equals(expected)) {
                failures.add("%s / %s / addGenerationPrompt=%s %s:%n  ours   %s%n  jinja2 %s"
                        .formatted(
                                name,
                                g.get("conversation").asText(),
                                g.get("add_generation_prompt"),
                                g.get("kwargs"),
                                rendered.replace("\n", "\\n"),
                                expected.replace("\n", "\\n")));
            }
            perTemplate.merge(name, 1, Integer::sum);
        }
        System.out.println("chat template goldens compared per template: " + perTemplate);
        assertThat(perTemplate).as("goldens compared").isNotEmpty();
        assertThat(failures)
                .as("first failures:%n%s", String.join("\n", failures.subList(0, Math.min(5, failures.size()))))
                .isEmpty();
    }

    @Test
    void recognisesFamiliesAndDefaultSystemPrompts() throws URISyntaxException {
        assertThat(ChatTemplate.fromTokenizerConfig(config("qwen2.5")).defaultSystemPrompt())
                .hasValue("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
        ChatTemplate smol = ChatTemplate.fromTokenizerConfig(config("smollm2"));
        assertThat(smol.family()).isEqualTo(ChatTemplate.Family.CHATML);
        assertThat(smol.defaultSystemPrompt())
                .hasValue("You are a helpful AI assistant named SmolLM, trained by Hugging Face");
        assumeTrue(Files.isRegularFile(config("qwen3")), "no Qwen3 tokenizer_config in shared; skipping");
        assertThat(ChatTemplate.fromTokenizerConfig(config("qwen3")).family()).isEqualTo(ChatTemplate.Family.QWEN3);
        assertThat(ChatTemplate.fromTokenizerConfig(config("llama3")).family()).isEqualTo(ChatTemplate.Family.LLAMA3);
    }

    @Test
    void smolLm2PromptTokenizesAsItsProvenanceSays() throws URISyntaxException {
        Path dir = SHARED.resolve("tokenizers/smollm2");
        assumeTrue(Files.isDirectory(dir), "no tokenizer at " + dir + "; skipping");
        String prompt = ChatTemplate.fromTokenizerConfig(config("smollm2"))
                .render(List.of(ChatMessage.user("What is the capital of France?")), true);
        Tokenizer t = Tokenizers.fromHuggingFace(dir);
        // ids from shared/tokenizers/smollm2/PROVENANCE.md (three independent implementations agree on them)
        assertThat(t.encode(prompt, false))
                .containsExactly(
                        1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407,
                        19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531,
                        198);
    }

    @Test
    void refusesTemplatesItCannotReproduce() {
        String mistral = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
                + "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}"
                + "{% endif %}{% endfor %}";
        assertThatThrownBy(() -> ChatTemplate.of("mistral-instruct", mistral, "<s>"))
                .isInstanceOf(UnsupportedChatTemplateException.class)
                .hasMessageContaining("mistral-instruct")
                .hasMessageContaining("[INST]")
                .satisfies(e -> assertThat(((UnsupportedChatTemplateException) e).markersFound())
                        .contains("[INST]", "bos_token"));
        String llama31 = "{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}"
                + "{%- endif %}{{- \"Cutting Knowledge Date: December 2023\\n\" }}{{- '<|start_header_id|>' + "
                + "message['role'] + '<|end_header_id|>\\n\\n' }}";
        assertThatThrownBy(() -> ChatTemplate.of("llama-3.1", llama31, "<|begin_of_text|>"))
                .isInstanceOf(UnsupportedChatTemplateException.class)
                .hasMessageContaining("Llama-3.1+");
        String oddChatMl =
                "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content | upper }}{% endfor %}";
        assertThatThrownBy(() -> ChatTemplate.of("odd", oddChatMl, null))
                .isInstanceOf(UnsupportedChatTemplateException.class)
                .hasMessageContaining("<|im_start|>");
        assertThatThrownBy(() -> ChatTemplate.of("none", "{{ messages }}", null))
                .isInstanceOf(UnsupportedChatTemplateException.class)
                .hasMessageContaining("markers found: none");
    }
}
