package io.engram.engine.tokenizer.chat;

import java.util.List;

/**
 * A {@code chat_template} is not one of the families {@link ChatTemplate} reproduces exactly. We never fall back to an
 * approximate prompt: a wrong prompt format silently degrades every answer.
 */
public final class UnsupportedChatTemplateException extends RuntimeException {

    private final List<String> markersFound;

    UnsupportedChatTemplateException(String source, String reason, List<String> markersFound) {
        super(("%s: %s; markers found: %s. Supported: ChatML (Qwen2.5, SmolLM2, plain), Qwen3 (ChatML with <think>), "
                        + "Llama-3. Render the prompt yourself, or add the family to ChatTemplate with goldens from jinja2.")
                .formatted(source, reason, markersFound.isEmpty() ? "none" : String.join(", ", markersFound)));
        this.markersFound = List.copyOf(markersFound);
    }

    /** The structural markers seen in the template (for example {@code "<|im_start|>"}). */
    public List<String> markersFound() {
        return markersFound;
    }
}
