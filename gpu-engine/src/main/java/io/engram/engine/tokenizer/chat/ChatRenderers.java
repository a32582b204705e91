package io.engram.engine.tokenizer.chat;

import java.util.List;

/**
 * Hand translations of the supported chat templates; each method mirrors its Jinja source statement by statement, and
 * {@code ChatTemplateTest} checks them against jinja2 renders of the real templates.
 */
final class ChatRenderers {

    private ChatRenderers() {}

    /** Qwen2.5 / SmolLM2 / plain ChatML (no tools). */
    static void chatMl(
            List<ChatMessage> messages,
            boolean addGenerationPrompt,
            String defaultSystem,
            boolean qwenToolResponses,
            StringBuilder out) {
        if (defaultSystem != null && !messages.getFirst().role().equals("system")) {
            turn(out, "system", defaultSystem);
        }
        for (int i = 0; i < messages.size(); i++) {
            ChatMessage m = messages.get(i);
            if (!qwenToolResponses) {
                turn(out, m.role(), m.content());
                continue;
            }
            // Qwen2.5: the first system message went out above; unknown roles are dropped
            switch (m.role()) {
                case "user", "assistant" -> turn(out, m.role(), m.content());
                // the template renders a leading system message before its loop and skips it inside; same output
                case "system" -> turn(out, "system", m.content());
                case "tool" -> toolResponse(messages, i, out);
                default -> {}
            }
        }
        if (addGenerationPrompt) {
            out.append("<|im_start|>assistant\n");
        }
    }

    /** Qwen3: ChatML plus think-block handling for assistant turns after the last user query. */
    static void qwen3(
            List<ChatMessage> messages, boolean addGenerationPrompt, Boolean enableThinking, StringBuilder out) {
        if (messages.getFirst().role().equals("system")) {
            turn(out, "system", messages.getFirst().content());
        }
        int lastQueryIndex = messages.size() - 1;
        for (int i = messages.size() - 1; i >= 0; i--) {
            ChatMessage m = messages.get(i);
            if (m.role().equals("user")
                    && !(m.content().startsWith("<tool_response>")
                            && m.content().endsWith("</tool_response>"))) {
                lastQueryIndex = i;
                break;
            }
        }
        for (int i = 0; i < messages.size(); i++) {
            ChatMessage m = messages.get(i);
            switch (m.role()) {
                case "user" -> turn(out, "user", m.content());
                case "system" -> {
                    if (i > 0) {
                        turn(out, "system", m.content());
                    }
                }
                case "assistant" -> {
                    String content = m.content();
                    String reasoning = "";
                    if (content.contains("</think>")) {
                        reasoning = PythonStrings.lstrip(
                                PythonStrings.lastPart(
                                        PythonStrings.rstrip(PythonStrings.firstPart(content, "</think>"), '\n'),
                                        "<think>"),
                                '\n');
                        content = PythonStrings.lstrip(PythonStrings.lastPart(content, "</think>"), '\n');
                    }
                    boolean last = i == messages.size() - 1;
                    if (i > lastQueryIndex && (last || !reasoning.isEmpty())) {
                        out.append("<|im_start|>assistant\n<think>\n")
                                .append(PythonStrings.strip(reasoning, '\n'))
                                .append("\n</think>\n\n")
                                .append(PythonStrings.lstrip(content, '\n'));
                    } else {
                        out.append("<|im_start|>assistant\n").append(content);
                    }
                    out.append("<|im_end|>\n");
                }
                case "tool" -> toolResponse(messages, i, out);
                default -> {}
            }
        }
        if (addGenerationPrompt) {
            out.append("<|im_start|>assistant\n");
            if (Boolean.FALSE.equals(enableThinking)) {
                out.append("<think>\n\n</think>\n\n");
            }
        }
    }

    /** Llama-3: BOS, then a header, the trimmed content and {@code <|eot_id|>} per message. */
    static void llama3(List<ChatMessage> messages, boolean addGenerationPrompt, String bosToken, StringBuilder out) {
        out.append(bosToken);
        for (ChatMessage m : messages) {
            out.append("<|start_header_id|>")
                    .append(m.role())
                    .append("<|end_header_id|>\n\n")
                    .append(PythonStrings.strip(m.content()))
                    .append("<|eot_id|>");
        }
        if (addGenerationPrompt) {
            out.append("<|start_header_id|>assistant<|end_header_id|>\n\n");
        }
    }

    private static void turn(StringBuilder out, String role, String content) {
        out.append("<|im_start|>").append(role).append('\n').append(content).append("<|im_end|>\n");
    }

    /** Consecutive tool turns share one user turn of {@code <tool_response>} blocks (Qwen2.5 and Qwen3). */
    private static void toolResponse(List<ChatMessage> messages, int i, StringBuilder out) {
        if (i == 0 || !messages.get(i - 1).role().equals("tool")) {
            out.append("<|im_start|>user");
        }
        out.append("\n<tool_response>\n").append(messages.get(i).content()).append("\n</tool_response>");
        if (i == messages.size() - 1 || !messages.get(i + 1).role().equals("tool")) {
            out.append("<|im_end|>\n");
        }
    }
}
