package io.engram.engine.tokenizer;

import java.util.OptionalInt;

/**
 * Text to token ids and back, with the behaviour of the model family's reference tokenizer (Hugging Face
 * {@code tokenizers} for {@code tokenizer.json}, llama.cpp for GGUF vocabularies).
 *
 * <p>Implementations are immutable after construction and safe to share between threads.
 */
public interface Tokenizer {

    /**
     * Encodes {@code text}. Special and added tokens written in the text (for example {@code "<|im_start|>"}) are
     * matched as whole tokens first, as the reference does.
     *
     * @param addSpecialTokens apply the post-processor: BOS for Llama-2/Mistral/stories, whatever the file's
     *     template says otherwise (nothing for Qwen)
     * @return a fresh array the caller owns
     */
    int[] encode(String text, boolean addSpecialTokens);

    /**
     * Decodes ids to text.
     *
     * @param skipSpecialTokens drop tokens marked special (BOS, EOS, chat markers)
     * @throws IllegalArgumentException if an id is outside {@code [0, vocabSize())}
     */
    String decode(int[] ids, boolean skipSpecialTokens);

    /**
     * The text one token contributes when appended to a stream, ignoring context (leading-space stripping at the
     * start of a text does not apply). A token that holds part of a UTF-8 sequence yields U+FFFD here; use {@link
     * StreamingDecoder} for exact streaming output.
     */
    String tokenText(int id);

    /** Number of ids, added tokens included: every id in {@code [0, vocabSize())} decodes. */
    int vocabSize();

    /** The beginning-of-sequence id, if the tokenizer has one. */
    OptionalInt bosId();

    /** The end-of-sequence id (generation stops there), if the tokenizer has one. */
    OptionalInt eosId();

    /** Whether {@code id} is a special token (skipped by {@code decode(ids, true)}). */
    boolean isSpecial(int id);

    /** Exact lookup of a token's stored content (vocab piece or added token), no normalization. */
    OptionalInt tokenId(String tokenContent);
}
