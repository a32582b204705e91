package io.engram.engine.tokenizer.chat;

/**
 * One turn of a conversation.
 *
 * @param role {@code "system"}, {@code "user"}, {@code "assistant"} or {@code "tool"} (templates decide what other
 *     roles do; some drop them)
 * @param content the turn's text, verbatim
 */
public record ChatMessage(String role, String content) {

    public ChatMessage {
        if (role == null || content == null) {
            throw new IllegalArgumentException("a chat message needs a role and content (use \"\" for empty content)");
        }
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }
}
