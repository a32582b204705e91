package io.engram.engine.model.gguf;

import io.engram.engine.config.ModelFormatException;
import java.util.List;

/**
 * The tokenizer as a GGUF file describes it ({@code tokenizer.ggml.*} and {@code tokenizer.chat_template}), unparsed:
 * the tokenizer package builds the actual tokenizer from it. Arrays are owned by this record; do not modify them.
 *
 * @param model {@code tokenizer.ggml.model}: "llama" (SentencePiece), "gpt2" (byte-level BPE), ...; null if absent
 * @param pre {@code tokenizer.ggml.pre}, the pre-tokenizer name of BPE vocabularies; null if absent
 * @param tokens the piece of every token id ({@code tokenizer.ggml.tokens})
 * @param scores one per token ({@code tokenizer.ggml.scores}), or null if absent
 * @param tokenTypes one per token ({@code tokenizer.ggml.token_type}: 1 normal, 2 unknown, 3 control, 4 user-defined,
 *     5 unused, 6 byte), or null if absent
 * @param merges BPE merges "a b" in rank order ({@code tokenizer.ggml.merges}); empty if absent
 * @param addBos {@code tokenizer.ggml.add_bos_token}; when absent, true for "llama" and false otherwise, as llama.cpp
 * @param addEos {@code tokenizer.ggml.add_eos_token}; false when absent
 * @param addSpacePrefix {@code tokenizer.ggml.add_space_prefix}, or null if absent (the tokenizer picks its default)
 * @param chatTemplate {@code tokenizer.chat_template} (Jinja source), or null if absent
 */
public record GgufTokenizerMetadata(
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
        Boolean addSpacePrefix,
        String chatTemplate) {

    private static final String P = "tokenizer.ggml.";

    /**
     * Reads the tokenizer metadata of {@code file}.
     *
     * @throws ModelFormatException when a key has the wrong type, an array's length differs from the token count, or a
     *     special token id is outside the vocabulary
     */
    public static GgufTokenizerMetadata from(GgufFile file) {
        GgufMetadata m = file.metadata();
        String model = m.getString(P + "model", null);
        List<String> tokens = m.has(P + "tokens") ? m.getStringList(P + "tokens") : List.of();
        float[] scores = m.has(P + "scores") ? m.getFloatArray(P + "scores") : null;
        int[] types = m.has(P + "token_type") ? m.getIntArray(P + "token_type") : null;
        if (scores != null && scores.length != tokens.size()) {
            throw new ModelFormatException(
                    file.path(),
                    "%sscores has %d entries but there are %d tokens".formatted(P, scores.length, tokens.size()));
        }
        if (types != null && types.length != tokens.size()) {
            throw new ModelFormatException(
                    file.path(),
                    "%stoken_type has %d entries but there are %d tokens".formatted(P, types.length, tokens.size()));
        }
        return new GgufTokenizerMetadata(
                model,
                m.getString(P + "pre", null),
                tokens,
                scores,
                types,
                m.has(P + "merges") ? m.getStringList(P + "merges") : List.of(),
                tokenId(file, "bos_token_id", tokens.size()),
                tokenId(file, "eos_token_id", tokens.size()),
                tokenId(file, "unknown_token_id", tokens.size()),
                m.getBoolean(P + "add_bos_token", "llama".equals(model)),
                m.getBoolean(P + "add_eos_token", false),
                m.has(P + "add_space_prefix") ? m.getBoolean(P + "add_space_prefix") : null,
                m.getString("tokenizer.chat_template", null));
    }

    private static Integer tokenId(GgufFile file, String key, int vocab) {
        GgufMetadata m = file.metadata();
        if (!m.has(P + key)) {
            return null;
        }
        int id = m.getInt(P + key);
        if (id < 0 || (vocab > 0 && id >= vocab)) {
            throw new ModelFormatException(
                    file.path(), "%s%s = %d is outside the vocabulary of %d tokens".formatted(P, key, id, vocab));
        }
        return id;
    }

    /** The vocabulary in the form the tokenizer factory takes. */
    public io.engram.engine.tokenizer.GgufVocab vocab() {
        return new io.engram.engine.tokenizer.GgufVocab(
                model, pre, tokens, scores, tokenTypes, merges, bosId, eosId, unkId, addBos, addEos, addSpacePrefix);
    }
}
