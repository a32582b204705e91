package io.engram.engine.tokenizer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * A tokenizer assembled from Hugging Face {@code tokenizers} components: added-token matching, normalizer,
 * pre-tokenizer, BPE model, post-processor and decoder, run in that library's order. Built from a {@code
 * tokenizer.json} by {@link #load} or from a GGUF byte-level vocabulary by {@link Tokenizers#fromGguf}.
 *
 * <p>Immutable and thread-safe.
 */
public final class HfTokenizer implements Tokenizer {

    private final String source;
    private final Normalizer normalizer; // nullable
    private final PreTokenizer preTokenizer; // nullable
    private final BpeModel model;
    private final AddedVocabulary added;
    private final Map<String, Integer> addedByContent;
    private final String[] idToToken; // (vocabSize) null where no token has that id
    private final boolean[] special; // (vocabSize)
    private final PostProcessor postProcessor; // nullable
    private final TokenDecoder decoder; // nullable: tokens are joined with spaces, as in the reference
    private final Integer bosId;
    private final Integer eosId;

    /** Ids may run this far past the entry count (sparse added tokens) before the file counts as malformed. */
    private static final long MAX_ID_SLACK = 1 << 16;

    /** {@code id + 1} when {@code id} is in {@code [0, limit)}. @throws TokenizerFormatException otherwise */
    private static int checkedId(String source, int id, long limit) {
        if (id < 0 || id >= limit) {
            throw new TokenizerFormatException(
                    source,
                    "token id " + id + " is out of range: the file has entries for ids " + "0.." + (limit / 2)
                            + " or so; a vocabulary or added-token id is corrupt");
        }
        return id + 1;
    }

    HfTokenizer(
            String source,
            Normalizer normalizer,
            PreTokenizer preTokenizer,
            BpeModel model,
            List<AddedToken> addedTokens,
            PostProcessor postProcessor,
            TokenDecoder decoder,
            Integer bosId,
            Integer eosId) {
        this.source = source;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.model = model;
        this.added = new AddedVocabulary(addedTokens, normalizer);
        this.postProcessor = postProcessor;
        this.decoder = decoder;
        int size = 0;
        // ids index arrays: a crafted id (negative, or far beyond the entries there are) is a format error, never an
        // out-of-memory or an overflow
        int entries = model.vocab().size() + addedTokens.size();
        long limit = Math.max(MAX_ID_SLACK, 2L * entries);
        for (int id : model.vocab().values()) {
            size = Math.max(size, checkedId(source, id, limit));
        }
        for (AddedToken t : addedTokens) {
            size = Math.max(size, checkedId(source, t.id(), limit));
        }
        idToToken = new String[size];
        special = new boolean[size];
        model.vocab().forEach((token, id) -> idToToken[id] = token);
        Map<String, Integer> byContent = new HashMap<>();
        for (AddedToken t : addedTokens) {
            idToToken[t.id()] = t.content();
            special[t.id()] = t.special();
            byContent.put(t.content(), t.id());
        }
        this.addedByContent = Map.copyOf(byContent);
        checkId(bosId, "bos");
        checkId(eosId, "eos");
        this.bosId = bosId;
        this.eosId = eosId;
    }

    private void checkId(Integer id, String what) {
        if (id != null && (id < 0 || id >= idToToken.length || idToToken[id] == null)) {
            throw new TokenizerFormatException(
                    source, "%s id %d is not a token id (vocab size %d)".formatted(what, id, idToToken.length));
        }
    }

    /**
     * Loads a Hugging Face tokenizer.
     *
     * @param tokenizerJson the {@code tokenizer.json} file
     * @param tokenizerConfigJson the {@code tokenizer_config.json} beside it (BOS/EOS names), or null
     * @throws TokenizerFormatException if a file cannot be read or is malformed
     * @throws UnsupportedTokenizerException if a component type is not implemented
     */
    public static HfTokenizer load(Path tokenizerJson, Path tokenizerConfigJson) {
        return TokenizerJson.load(tokenizerJson, tokenizerConfigJson);
    }

    /** Where this tokenizer was loaded from. */
    public String source() {
        return source;
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        IntList out = new IntList(text.length() / 3 + 4);
        for (AddedVocabulary.Segment seg : added.splitRaw(text)) {
            if (seg.isToken()) {
                out.add(seg.token());
                continue;
            }
            String normalized = normalizer == null ? seg.text() : normalizer.normalize(seg.text());
            boolean atStart = seg.start() == 0;
            if (added.hasNormalizedTokens()) {
                for (AddedVocabulary.Segment sub : added.splitNormalized(normalized)) {
                    if (sub.isToken()) {
                        out.add(sub.token());
                    } else {
                        encodeSegment(sub.text(), atStart && sub.start() == 0, out);
                    }
                }
            } else {
                encodeSegment(normalized, atStart, out);
            }
        }
        int[] ids = out.toArray();
        return addSpecialTokens && postProcessor != null ? postProcessor.apply(ids) : ids;
    }

    private void encodeSegment(String text, boolean atStart, IntList out) {
        if (text.isEmpty()) {
            return;
        }
        if (preTokenizer == null) {
            model.encode(text, out);
            return;
        }
        List<PreTokenizer.Piece> pieces = new ArrayList<>(1);
        pieces.add(new PreTokenizer.Piece(text, atStart));
        for (PreTokenizer.Piece p : preTokenizer.apply(pieces)) {
            model.encode(p.text(), out);
        }
    }

    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        List<String> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            String token = token(id);
            if (!(skipSpecialTokens && special[id])) {
                tokens.add(token);
            }
        }
        return decoder == null ? String.join(" ", tokens) : decoder.decodeToString(tokens, true);
    }

    @Override
    public String tokenText(int id) {
        String token = token(id);
        return decoder == null ? token : decoder.decodeToString(List.of(token), false);
    }

    private String token(int id) {
        if (id < 0 || id >= idToToken.length || idToToken[id] == null) {
            throw new IllegalArgumentException(
                    "token id %d is not in the vocabulary of %s (size %d)".formatted(id, source, idToToken.length));
        }
        return idToToken[id];
    }

    /** The stored content of a token (vocab piece in the model's alphabet, or added-token text). */
    public String tokenContent(int id) {
        return token(id);
    }

    @Override
    public int vocabSize() {
        return idToToken.length;
    }

    @Override
    public OptionalInt bosId() {
        return bosId == null ? OptionalInt.empty() : OptionalInt.of(bosId);
    }

    @Override
    public OptionalInt eosId() {
        return eosId == null ? OptionalInt.empty() : OptionalInt.of(eosId);
    }

    @Override
    public boolean isSpecial(int id) {
        return id >= 0 && id < special.length && special[id];
    }

    @Override
    public OptionalInt tokenId(String tokenContent) {
        Integer id = addedByContent.get(tokenContent);
        return id != null ? OptionalInt.of(id) : model.tokenId(tokenContent);
    }

    @Override
    public String toString() {
        return "HfTokenizer[" + source + ", vocab " + idToToken.length + "]";
    }
}
