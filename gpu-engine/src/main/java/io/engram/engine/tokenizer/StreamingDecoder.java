package io.engram.engine.tokenizer;

import java.util.Arrays;

/**
 * Turns a stream of generated token ids into text deltas. A delta is emitted only once the text it ends with is
 * complete, so byte tokens that carry part of a UTF-8 character (byte fallback, byte-level BPE) are held back until
 * the character is whole. The concatenation of all deltas plus {@link #flush()} equals {@code
 * tokenizer.decode(allIds, skipSpecialTokens)}.
 *
 * <p>Each step decodes only a short window: the tokens since the last emitted boundary (the "prefix") plus the new
 * ones, and emits what the new tokens add to the prefix's text. Decoding the prefix and the window alike keeps
 * start-of-text rules (such as stripping the dummy-prefix space) consistent between the two.
 *
 * <p>Not thread-safe: one instance per generation stream.
 */
public final class StreamingDecoder {

    private final Tokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private int[] ids = new int[64];
    private int size;
    private int prefixOffset;
    private int readOffset;

    public StreamingDecoder(Tokenizer tokenizer, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
    }

    /**
     * Adds one token and returns the text that became complete, possibly empty.
     *
     * @throws IllegalArgumentException if the id is not in the tokenizer's vocabulary
     */
    public String accept(int id) {
        if (id < 0 || id >= tokenizer.vocabSize()) {
            throw new IllegalArgumentException(
                    "token id %d is outside the vocabulary (size %d)".formatted(id, tokenizer.vocabSize()));
        }
        if (size == ids.length) {
            ids = Arrays.copyOf(ids, size * 2);
        }
        ids[size++] = id;
        String prefixText = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, readOffset), skipSpecialTokens);
        String newText = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, size), skipSpecialTokens);
        if (newText.length() > prefixText.length() && !newText.endsWith("\uFFFD") && newText.startsWith(prefixText)) {
            prefixOffset = readOffset;
            readOffset = size;
            return newText.substring(prefixText.length());
        }
        return "";
    }

    /** Returns whatever is still held back (incomplete characters come out as U+FFFD) and resets the stream. */
    public String flush() {
        String prefixText = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, readOffset), skipSpecialTokens);
        String newText = tokenizer.decode(Arrays.copyOfRange(ids, prefixOffset, size), skipSpecialTokens);
        String rest = newText.startsWith(prefixText) ? newText.substring(prefixText.length()) : newText;
        size = 0;
        prefixOffset = 0;
        readOffset = 0;
        return rest;
    }
}
