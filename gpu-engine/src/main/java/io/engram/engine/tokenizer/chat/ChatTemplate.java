package io.engram.engine.tokenizer.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.engine.tokenizer.TokenizerFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Renders a conversation into a model's prompt string, reproducing what Python jinja2 renders from the model's
 * {@code chat_template} (as {@code transformers}' {@code apply_chat_template} does), for the families we recognise.
 *
 * <p>This is not a Jinja interpreter. The family is recognised from structural markers of the template text, and each
 * family's known template is re-implemented by hand and checked against jinja2 goldens ({@code ChatTemplateTest}):
 *
 * <ul>
 *   <li>{@link Family#CHATML}: {@code <|im_start|>role\ncontent<|im_end|>\n} per message; an optional default system
 *       prompt taken from the template (Qwen2.5: "You are Qwen, ...", SmolLM2: "You are a helpful AI assistant named
 *       SmolLM, ..."); Qwen2.5's {@code <tool_response>} wrapping of {@code tool} turns when the template has it.
 *   <li>{@link Family#QWEN3}: ChatML with Qwen3's handling of {@code <think>} blocks in assistant turns and {@code
 *       enable_thinking}.
 *   <li>{@link Family#LLAMA3}: {@code bos}, {@code <|start_header_id|>role<|end_header_id|>\n\n} + trimmed content +
 *       {@code <|eot_id|>}.
 *   <li>{@link Family#QUESTION_ANSWER}: Engram's own model (training/engram_train/tokenizer.py): {@code bos}, then
 *       system turns as plain text, user turns as {@code Question: ...\nAnswer:} and assistant turns as {@code " " +
 *       content + eos}, turns separated by a blank line: the engine's {@code PromptFormat.PLAIN}.
 * </ul>
 *
 * Anything else, including tool definitions and tool calls, is refused with {@link UnsupportedChatTemplateException}.
 * Immutable and thread-safe.
 */
public final class ChatTemplate {

    /** The template families we reproduce. */
    public enum Family {
        CHATML,
        QWEN3,
        LLAMA3,
        QUESTION_ANSWER
    }

    private static final List<String> KNOWN_MARKERS = List.of(
            "<|im_start|>",
            "<|im_end|>",
            "<|start_header_id|>",
            "<|eot_id|>",
            "[INST]",
            "<start_of_turn>",
            "<|user|>",
            "<|assistant|>",
            "<|system|>",
            "<think>",
            "<tool_response>",
            "tools",
            "Cutting Knowledge Date",
            "add_generation_prompt",
            "bos_token");
    private static final Pattern DEFAULT_SYSTEM =
            Pattern.compile("'<\\|im_start\\|>system\\\\n((?:[^'\\\\]|\\\\.)*)<\\|im_end\\|>\\\\n'");

    private final String source;
    private final Family family;
    private final String bosToken; // LLAMA3, QUESTION_ANSWER
    private final String eosToken; // QUESTION_ANSWER
    private final String defaultSystem; // CHATML: null when the template has none
    private final boolean qwenToolResponses; // CHATML: Qwen2.5's role handling
    private final boolean generationPromptAlways; // LLAMA3: the template ignores add_generation_prompt
    private final Boolean enableThinking; // QWEN3: null = not passed

    private ChatTemplate(
            String source,
            Family family,
            String bosToken,
            String eosToken,
            String defaultSystem,
            boolean qwenToolResponses,
            boolean generationPromptAlways,
            Boolean enableThinking) {
        this.source = source;
        this.family = family;
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.defaultSystem = defaultSystem;
        this.qwenToolResponses = qwenToolResponses;
        this.generationPromptAlways = generationPromptAlways;
        this.enableThinking = enableThinking;
    }

    /**
     * Reads {@code chat_template} (a string, or the {@code "default"} entry of a list of named templates) and {@code
     * bos_token} from a {@code tokenizer_config.json}.
     *
     * @throws TokenizerFormatException if the file cannot be read or has no chat template
     * @throws UnsupportedChatTemplateException if the template is not a family we reproduce
     */
    public static ChatTemplate fromTokenizerConfig(Path tokenizerConfigJson) {
        JsonNode config;
        try {
            config = new ObjectMapper().readTree(Files.readString(tokenizerConfigJson));
        } catch (IOException e) {
            throw new TokenizerFormatException(
                    tokenizerConfigJson.toString(), "cannot read as JSON: " + e.getMessage(), e);
        }
        JsonNode node = config.get("chat_template");
        String template = null;
        if (node != null && node.isTextual()) {
            template = node.asText();
        } else if (node != null && node.isArray()) {
            for (JsonNode named : node) {
                if ("default".equals(named.path("name").asText())) {
                    template = named.path("template").asText(null);
                }
            }
        }
        if (template == null) {
            throw new TokenizerFormatException(
                    tokenizerConfigJson,
                    "has no chat_template (a base model, or the template "
                            + "lives in chat_template.jinja, which is not read)");
        }
        return of(
                tokenizerConfigJson.toString(),
                template,
                specialToken(config.get("bos_token")),
                specialToken(config.get("eos_token")));
    }

    /** As {@link #of(String, String, String)}, with the EOS text that templates ending assistant turns with it need. */
    public static ChatTemplate of(String source, String template, String bosToken, String eosToken) {
        if (template.contains("Question: {{ message['content'] }}\nAnswer:")) {
            List<String> markers = List.of("Question:", "Answer:");
            requireAll(
                    source,
                    template,
                    markers,
                    "Engram question/answer",
                    "{{ bos_token }}",
                    "{% if message['role'] == 'user' %}",
                    "{% elif message['role'] == 'assistant' %} {{ message['content'] }}{{ eos_token }}",
                    "{% if not loop.first %}\n\n{% endif %}");
            if (bosToken == null || eosToken == null) {
                throw new UnsupportedChatTemplateException(
                        source,
                        "the question/answer template needs bos_token and "
                                + "eos_token, and the tokenizer config lacks one",
                        markers);
            }
            return new ChatTemplate(source, Family.QUESTION_ANSWER, bosToken, eosToken, null, false, false, null);
        }
        return of(source, template, bosToken);
    }

    private static String specialToken(JsonNode node) {
        if (node == null || node.isNull()) {
            return null;
        }
        return node.isTextual() ? node.asText() : node.path("content").asText(null);
    }

    /**
     * Recognises a template.
     *
     * @param source where the template came from, for messages
     * @param bosToken the tokenizer's BOS text; required by templates that use {@code bos_token}
     * @throws UnsupportedChatTemplateException if the template is not a family we reproduce
     */
    public static ChatTemplate of(String source, String template, String bosToken) {
        List<String> markers = new ArrayList<>();
        for (String m : KNOWN_MARKERS) {
            if (template.contains(m)) {
                markers.add(m);
            }
        }
        boolean chatml = template.contains("<|im_start|>");
        boolean llama3 = template.contains("<|start_header_id|>");
        if (chatml == llama3) {
            throw new UnsupportedChatTemplateException(
                    source,
                    chatml
                            ? "both ChatML and Llama-3 markers"
                            : "no ChatML (<|im_start|>) or Llama-3 (<|start_header_id|>) markers",
                    markers);
        }
        if (llama3) {
            return llama3(source, template, bosToken, markers);
        }
        if (template.contains("reasoning_content") && template.contains("</think>")) {
            requireAll(
                    source,
                    template,
                    markers,
                    "Qwen3",
                    "'<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n'",
                    "ns.last_query_index",
                    "message.content.split('</think>')[-1].lstrip('\\n')",
                    "enable_thinking is defined and enable_thinking is false",
                    "'<|im_start|>assistant\\n'");
            return new ChatTemplate(source, Family.QWEN3, null, null, null, true, false, null);
        }
        if (template.contains("<think>") || template.contains("Cutting Knowledge Date")) {
            throw new UnsupportedChatTemplateException(
                    source, "a ChatML variant with reasoning blocks we do not know", markers);
        }
        boolean plainTurn = containsPart(
                        template, "'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'")
                || containsPart(template, "'<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>'");
        if (!plainTurn
                || !template.contains("add_generation_prompt")
                || !containsPart(template, "'<|im_start|>assistant\\n'")) {
            throw new UnsupportedChatTemplateException(
                    source,
                    "a ChatML template whose per-message or generation-prompt " + "form is not the standard one",
                    markers);
        }
        Matcher m = DEFAULT_SYSTEM.matcher(template);
        String defaultSystem = m.find() ? unescapeJinja(m.group(1)) : null;
        boolean qwenRoles =
                template.contains("(message.role == \"user\") or (message.role == \"system\" and not loop.first)");
        if (qwenRoles != template.contains("<tool_response>")) {
            throw new UnsupportedChatTemplateException(
                    source, "a ChatML template with an unfamiliar role/tool structure", markers);
        }
        return new ChatTemplate(source, Family.CHATML, null, null, defaultSystem, qwenRoles, false, null);
    }

    private static ChatTemplate llama3(String source, String template, String bosToken, List<String> markers) {
        if (template.contains("Cutting Knowledge Date") || template.contains("tools") || template.contains("ipython")) {
            throw new UnsupportedChatTemplateException(source, "a Llama-3.1+ template (tools, dates)", markers);
        }
        requireAll(
                source,
                template,
                markers,
                "Llama-3",
                "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+",
                "message['content'] | trim + '<|eot_id|>'",
                "{% if loop.index0 == 0 %}{% set content = bos_token + content %}",
                "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}");
        if (bosToken == null) {
            throw new UnsupportedChatTemplateException(
                    source, "a Llama-3 template needs bos_token, and none was given", markers);
        }
        return new ChatTemplate(
                source, Family.LLAMA3, bosToken, null, null, false, !template.contains("add_generation_prompt"), null);
    }

    private static void requireAll(
            String source, String template, List<String> markers, String family, String... parts) {
        for (String part : parts) {
            if (!containsPart(template, part)) {
                throw new UnsupportedChatTemplateException(
                        source,
                        "looks like %s but lacks `%s`, so it is a variant we ".formatted(family, part)
                                + "have no goldens for",
                        markers);
            }
        }
    }

    /**
     * Whether the template contains {@code part}, where the {@code \\n} escapes in {@code part} may also appear as
     * real newlines inside the template's string literals (the original Llama-3 template has them).
     */
    private static boolean containsPart(String template, String part) {
        return template.contains(part) || template.contains(part.replace("\\n", "\n"));
    }

    private static String unescapeJinja(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length()) {
                char n = s.charAt(++i);
                sb.append(
                        switch (n) {
                            case 'n' -> '\n';
                            case 't' -> '\t';
                            case 'r' -> '\r';
                            default -> n;
                        });
            } else {
                sb.append(c);
            }
        }
        return sb.toString();
    }

    /** The recognised family. */
    public Family family() {
        return family;
    }

    /** The default system prompt a ChatML template inserts when the first message is not a system one, if any. */
    public java.util.Optional<String> defaultSystemPrompt() {
        return java.util.Optional.ofNullable(defaultSystem);
    }

    /**
     * Passes {@code enable_thinking} to the template (Qwen3: {@code false} appends an empty think block to the
     * generation prompt). Other families ignore it, as their templates do.
     */
    public ChatTemplate withEnableThinking(boolean enable) {
        return new ChatTemplate(
                source, family, bosToken, eosToken, defaultSystem, qwenToolResponses, generationPromptAlways, enable);
    }

    /**
     * Renders the prompt.
     *
     * @param addGenerationPrompt end with the assistant header so the model answers next (the original Llama-3
     *     template appends it whatever this says)
     * @throws IllegalArgumentException if {@code messages} is empty
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        if (messages.isEmpty()) {
            throw new IllegalArgumentException("cannot render an empty conversation with " + source);
        }
        StringBuilder out = new StringBuilder(256);
        switch (family) {
            case CHATML -> ChatRenderers.chatMl(messages, addGenerationPrompt, defaultSystem, qwenToolResponses, out);
            case QWEN3 -> ChatRenderers.qwen3(messages, addGenerationPrompt, enableThinking, out);
            case LLAMA3 -> ChatRenderers.llama3(messages, addGenerationPrompt || generationPromptAlways, bosToken, out);
            case QUESTION_ANSWER -> questionAnswer(messages, out);
        }
        return out.toString();
    }

    private void questionAnswer(List<ChatMessage> messages, StringBuilder out) {
        out.append(bosToken);
        for (int i = 0; i < messages.size(); i++) {
            ChatMessage m = messages.get(i);
            switch (m.role()) {
                case "user" ->
                    out.append(i == 0 ? "" : "\n\n")
                            .append("Question: ")
                            .append(m.content())
                            .append("\nAnswer:");
                case "assistant" -> out.append(' ').append(m.content()).append(eosToken);
                default -> out.append(i == 0 ? "" : "\n\n").append(m.content());
            }
        }
    }

    @Override
    public String toString() {
        return "ChatTemplate[" + family + ", " + source + "]";
    }
}
