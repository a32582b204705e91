package io.engram.engine.tokenizer;

import java.util.List;

/**
 * The tokenizer metadata of a GGUF file ({@code tokenizer.ggml.*} keys), as the GGUF reader hands it to {@link
 * Tokenizers#fromGguf}.
 *
 * @param model {@code tokenizer.ggml.model}: {@code "llama"} (SentencePiece, scores) or {@code "gpt2"} (byte-level
 *     BPE, merges)
 * @param pre {@code tokenizer.ggml.pre}, the pre-tokenizer name ({@code "llama-bpe"}, {@code "qwen2"}, {@code
 *     "smollm"}, {@code "gpt2"}, {@code "default"}...); may be null
 * @param tokens {@code tokenizer.ggml.tokens}, indexed by id
 * @param scores {@code tokenizer.ggml.scores}; required for {@code "llama"}, may be null otherwise
 * @param tokenTypes {@code tokenizer.ggml.token_type}: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6
 *     byte; may be null (all normal)
 * @param merges {@code tokenizer.ggml.merges} as {@code "a b"} strings; {@code "gpt2"} only, may be empty
 * @param bosId {@code tokenizer.ggml.bos_token_id}, may be null
 * @param eosId {@code tokenizer.ggml.eos_token_id}, may be null
 * @param unkId {@code tokenizer.ggml.unknown_token_id}, may be null
 * @param addBos {@code tokenizer.ggml.add_bos_token}: {@code encode(text, true)} prepends BOS
 * @param addEos {@code tokenizer.ggml.add_eos_token}: {@code encode(text, true)} appends EOS
 * @param addSpacePrefix {@code tokenizer.ggml.add_space_prefix}; null means true (SentencePiece's dummy prefix)
 */
public record GgufVocab(
        String model,
        String pre,
        List<String> tokens,
        float[] scores,
        int[] tokenTypes,
        List<String> merges,
        Integer bosId,
        Integer eosId,
        Integer unkId,
        boolean addBos,
        boolean addEos,
        Boolean addSpacePrefix) {

    public static final int TYPE_NORMAL = 1;
    public static final int TYPE_UNKNOWN = 2;
    public static final int TYPE_CONTROL = 3;
    public static final int TYPE_USER_DEFINED = 4;
    public static final int TYPE_UNUSED = 5;
    public static final int TYPE_BYTE = 6;

    static final String SOURCE = "GGUF vocabulary";

    /** Checks shapes so a broken reader fails here, with the key that is wrong. */
    public GgufVocab {
        if (model == null) {
            throw new TokenizerFormatException(SOURCE, "tokenizer.ggml.model is missing");
        }
        if (tokens == null || tokens.isEmpty()) {
            throw new TokenizerFormatException(SOURCE, "tokenizer.ggml.tokens is missing or empty");
        }
        tokens = List.copyOf(tokens);
        merges = merges == null ? List.of() : List.copyOf(merges);
        if (scores != null && scores.length != tokens.size()) {
            throw new TokenizerFormatException(
                    SOURCE,
                    "tokenizer.ggml.scores has %d entries for %d tokens".formatted(scores.length, tokens.size()));
        }
        if (tokenTypes != null && tokenTypes.length != tokens.size()) {
            throw new TokenizerFormatException(
                    SOURCE,
                    "tokenizer.ggml.token_type has %d entries for %d tokens"
                            .formatted(tokenTypes.length, tokens.size()));
        }
        for (Integer id : new Integer[] {bosId, eosId, unkId}) {
            if (id != null && (id < 0 || id >= tokens.size())) {
                throw new TokenizerFormatException(
                        SOURCE, "special token id %d is outside the %d tokens".formatted(id, tokens.size()));
            }
        }
        if (addBos && bosId == null) {
            throw new TokenizerFormatException(
                    SOURCE, "tokenizer.ggml.add_bos_token is true but bos_token_id is missing");
        }
        if (addEos && eosId == null) {
            throw new TokenizerFormatException(
                    SOURCE, "tokenizer.ggml.add_eos_token is true but eos_token_id is missing");
        }
    }

    /** The type of token {@code id}, {@link #TYPE_NORMAL} when the file has no types. */
    public int typeOf(int id) {
        return tokenTypes == null ? TYPE_NORMAL : tokenTypes[id];
    }

    /** {@code addSpacePrefix}, defaulting to true. */
    public boolean spacePrefix() {
        return addSpacePrefix == null || addSpacePrefix;
    }
}
