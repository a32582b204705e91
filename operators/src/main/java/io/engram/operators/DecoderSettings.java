package io.engram.operators;

import java.io.Serializable;

/**
 * Settings of {@link EventDecoder}, validated on construction.
 *
 * @param maxEventBytes largest accepted record value in bytes; larger records become {@code TOO_LARGE} dead letters
 *     before any decoding is attempted
 */
public record DecoderSettings(int maxEventBytes) implements Serializable {

    public DecoderSettings {
        if (maxEventBytes < 16) {
            throw new IllegalArgumentException(
                    "maxEventBytes must be at least 16 (header and fingerprint alone take 10), got " + maxEventBytes);
        }
    }
}
