package io.engram.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * SentencePiece BPE from a GGUF {@code "llama"} vocabulary (pieces + scores, no merge list), encoding as llama.cpp's
 * SPM tokenizer does:
 *
 * <ol>
 *   <li>unknown, control and user-defined tokens written in the text are cut out first, longest token first;
 *   <li>each remaining fragment gets a leading space if it follows the start or a special token (and {@code
 *       addSpacePrefix}), and spaces become {@code "▁"};
 *   <li>starting from one symbol per character, the adjacent pair whose concatenation is a piece with the highest
 *       score is merged, leftmost on ties, until no pair is a piece;
 *   <li>symbols that are not pieces become their UTF-8 bytes' {@code <0xAB>} tokens.
 * </ol>
 *
 * Decoding follows the Hugging Face Llama decoder (▁ to space, byte tokens to bytes, one leading space stripped).
 * Immutable and thread-safe.
 */
final class SpmTokenizer implements Tokenizer {

    private final GgufVocab vocab;
    private final Map<String, Integer> ids;
    private final int[] byteIds = new int[256]; // -1 where the vocab has no byte token
    private final int[] specialsLongestFirst;
    private final TokenDecoder decoder;

    SpmTokenizer(GgufVocab vocab) {
        if (vocab.scores() == null) {
            throw new TokenizerFormatException(
                    GgufVocab.SOURCE,
                    "tokenizer.ggml.scores is required for model 'llama' (SentencePiece merges by score)");
        }
        this.vocab = vocab;
        List<String> tokens = vocab.tokens();
        ids = new HashMap<>(tokens.size() * 2);
        for (int i = 0; i < tokens.size(); i++) {
            ids.put(tokens.get(i), i); // last wins on duplicates, as llama.cpp's token_to_id
        }
        Arrays.fill(byteIds, -1);
        List<Integer> specials = new ArrayList<>();
        for (int i = 0; i < tokens.size(); i++) {
            int type = vocab.typeOf(i);
            if (type == GgufVocab.TYPE_BYTE) {
                int b = TokenDecoder.ByteFallback.byteValue(tokens.get(i));
                if (b < 0) {
                    throw new TokenizerFormatException(
                            GgufVocab.SOURCE,
                            "token %d '%s' has type byte but is not <0xAB>".formatted(i, tokens.get(i)));
                }
                byteIds[b] = i;
            } else if ((type == GgufVocab.TYPE_UNKNOWN
                            || type == GgufVocab.TYPE_CONTROL
                            || type == GgufVocab.TYPE_USER_DEFINED)
                    && !tokens.get(i).isEmpty()) {
                specials.add(i);
            }
        }
        for (int b = 0; b < 256; b++) {
            if (byteIds[b] < 0) {
                Integer id = ids.get("<0x%02X>".formatted(b));
                byteIds[b] = id == null ? -1 : id;
            }
        }
        specials.sort(
                (a, b) -> Integer.compare(tokens.get(b).length(), tokens.get(a).length()));
        specialsLongestFirst = specials.stream().mapToInt(Integer::intValue).toArray();
        List<TokenDecoder> steps = new ArrayList<>(List.of(
                new TokenDecoder.Replace(HfRegex.literal("\u2581"), " "),
                new TokenDecoder.ByteFallback(),
                new TokenDecoder.Fuse()));
        if (vocab.spacePrefix()) {
            steps.add(new TokenDecoder.Strip(' ', 1, 0));
        }
        decoder = new TokenDecoder.Sequence(steps);
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        IntList out = new IntList(text.length() / 3 + 4);
        if (addSpecialTokens && vocab.addBos()) {
            out.add(vocab.bosId());
        }
        boolean prevSpecial = true;
        for (Object fragment : partition(text)) {
            if (fragment instanceof Integer token) {
                out.add(token);
                prevSpecial = true;
            } else {
                String raw = (String) fragment;
                if (vocab.spacePrefix() && prevSpecial) {
                    raw = " " + raw;
                }
                encodeFragment(raw.replace(' ', '\u2581'), out);
                prevSpecial = false;
            }
        }
        if (addSpecialTokens && vocab.addEos()) {
            out.add(vocab.eosId());
        }
        return out.toArray();
    }

    /** Cuts special tokens out of the text, longest first, as llama.cpp's {@code tokenizer_st_partition}. */
    private List<Object> partition(String text) {
        List<Object> fragments = new ArrayList<>();
        if (!text.isEmpty()) {
            fragments.add(text);
        }
        for (int id : specialsLongestFirst) {
            String special = vocab.tokens().get(id);
            List<Object> next = new ArrayList<>(fragments.size() + 2);
            for (Object f : fragments) {
                if (!(f instanceof String s) || !s.contains(special)) {
                    next.add(f);
                    continue;
                }
                int from = 0;
                for (int at = s.indexOf(special); at >= 0; at = s.indexOf(special, from)) {
                    if (at > from) {
                        next.add(s.substring(from, at));
                    }
                    next.add(id);
                    from = at + special.length();
                }
                if (from < s.length()) {
                    next.add(s.substring(from));
                }
            }
            fragments = next;
        }
        return fragments;
    }

    private void encodeFragment(String text, IntList out) {
        int n = text.codePointCount(0, text.length());
        int[] start = new int[n];
        int[] end = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0, off = 0; i < n; i++) {
            start[i] = off;
            off += Character.charCount(text.codePointAt(off));
            end[i] = off;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            pushBigram(text, start[i], end[i + 1], i, heap);
        }
        while (!heap.isEmpty()) {
            long top = heap.pop();
            int left = (int) top;
            int right = next[left];
            // a stale entry is skipped unless the pair now at `left` merges with the same priority, which then
            // gives exactly what the pair's own (equal) entry would
            if (end[left] == start[left] || right < 0) {
                continue;
            }
            Integer merged = ids.get(text.substring(start[left], end[right]));
            if (merged == null || priority(vocab.scores()[merged]) != (int) (top >> 32)) {
                continue;
            }
            end[left] = end[right];
            start[right] = end[right]; // mark the right symbol merged away
            next[left] = next[right];
            if (next[right] >= 0) {
                prev[next[right]] = left;
            }
            if (prev[left] >= 0) {
                pushBigram(text, start[prev[left]], end[left], prev[left], heap);
            }
            if (next[left] >= 0) {
                pushBigram(text, start[left], end[next[left]], left, heap);
            }
        }
        for (int i = 0; i >= 0 && n > 0; i = next[i]) {
            String piece = text.substring(start[i], end[i]);
            Integer id = ids.get(piece);
            if (id != null) {
                out.add(id);
                continue;
            }
            for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
                int byteId = byteIds[b & 0xFF];
                if (byteId < 0) {
                    throw new IllegalArgumentException(
                            "'%s' is not in the GGUF vocabulary and it has no byte token <0x%02X>"
                                    .formatted(piece, b & 0xFF));
                }
                out.add(byteId);
            }
        }
    }

    private void pushBigram(String text, int from, int to, int left, LongHeap heap) {
        Integer id = ids.get(text.substring(from, to));
        if (id != null) {
            heap.push(((long) priority(vocab.scores()[id]) << 32) | left);
        }
    }

    /** Maps a score to an int that sorts ascending for descending scores. */
    private static int priority(float score) {
        int bits = Float.floatToIntBits(score);
        int sortable = bits >= 0 ? bits : bits ^ 0x7FFFFFFF;
        return ~sortable;
    }

    @Override
    public String decode(int[] tokenIds, boolean skipSpecialTokens) {
        List<String> pieces = new ArrayList<>(tokenIds.length);
        for (int id : tokenIds) {
            String t = token(id);
            if (!(skipSpecialTokens && isSpecial(id))) {
                pieces.add(t);
            }
        }
        return decoder.decodeToString(pieces, true);
    }

    @Override
    public String tokenText(int id) {
        return decoder.decodeToString(List.of(token(id)), false);
    }

    private String token(int id) {
        if (id < 0 || id >= vocab.tokens().size()) {
            throw new IllegalArgumentException("token id %d is outside the GGUF vocabulary (size %d)"
                    .formatted(id, vocab.tokens().size()));
        }
        return vocab.tokens().get(id);
    }

    @Override
    public int vocabSize() {
        return vocab.tokens().size();
    }

    @Override
    public OptionalInt bosId() {
        return vocab.bosId() == null ? OptionalInt.empty() : OptionalInt.of(vocab.bosId());
    }

    @Override
    public OptionalInt eosId() {
        return vocab.eosId() == null ? OptionalInt.empty() : OptionalInt.of(vocab.eosId());
    }

    @Override
    public boolean isSpecial(int id) {
        if (id < 0 || id >= vocab.tokens().size()) {
            return false;
        }
        int type = vocab.typeOf(id);
        return type == GgufVocab.TYPE_CONTROL || type == GgufVocab.TYPE_UNKNOWN;
    }

    @Override
    public OptionalInt tokenId(String tokenContent) {
        Integer id = ids.get(tokenContent);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }
}
