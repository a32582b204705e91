package io.engram.engine.generate;

/**
 * Turns a stream of token ids into text deltas, holding back incomplete UTF-8 sequences. One instance per generation.
 */
public interface Detokenizer {
    /** Text that {@code token} completes (may be empty while a multi-byte character is incomplete). */
    String next(int token);
}
