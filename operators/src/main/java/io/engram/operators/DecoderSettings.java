package io.engram.operators;

import java.io.Serializable;

/**
 * Settings of {@link EventDecoder}, validated on construction.
 *
 * @param maxEventBytes largest accepted record value in bytes; larger records become {@code TOO_LARGE} dead letters
 *     before any decoding is attempted
 * @param partChars content events with a longer text are cut into parts of at most this many characters
 *     ({@link ContentParts})
 */
public record DecoderSettings(int maxEventBytes, int partChars) implements Serializable {

    /** Parts of 8,192 characters: about 2,000 tokens of English text each. */
    public static final int DEFAULT_PART_CHARS = 8192;

    public DecoderSettings {
        if (maxEventBytes < 16) {
            throw new IllegalArgumentException(
                    "maxEventBytes must be at least 16 (header and fingerprint alone take 10), got " + maxEventBytes);
        }
        if (partChars < 2) {
            throw new IllegalArgumentException("parts need at least 2 characters, got " + partChars);
        }
    }

    public DecoderSettings(int maxEventBytes) {
        this(maxEventBytes, DEFAULT_PART_CHARS);
    }
}
