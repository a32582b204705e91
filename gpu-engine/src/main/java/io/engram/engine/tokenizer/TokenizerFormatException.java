package io.engram.engine.tokenizer;

import java.nio.file.Path;

/**
 * A tokenizer file (or GGUF vocabulary) is malformed or inconsistent. The message names the source, what is wrong,
 * and what to do about it.
 */
public class TokenizerFormatException extends RuntimeException {

    private final String source;

    /**
     * @param source the file path, or a description such as {@code "GGUF vocabulary"}
     * @param message what is wrong and, where possible, how to fix it
     */
    public TokenizerFormatException(String source, String message) {
        super(source + ": " + message);
        this.source = source;
    }

    public TokenizerFormatException(String source, String message, Throwable cause) {
        super(source + ": " + message, cause);
        this.source = source;
    }

    public TokenizerFormatException(Path file, String message) {
        this(String.valueOf(file), message);
    }

    /** The file or vocabulary the problem is in. */
    public String source() {
        return source;
    }
}
