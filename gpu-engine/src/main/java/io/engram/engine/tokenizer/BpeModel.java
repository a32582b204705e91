package io.engram.engine.tokenizer;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The BPE model of Hugging Face {@code tokenizers}, both the byte-level flavour (GPT-2, Llama-3, Qwen) and the
 * SentencePiece flavour (byte fallback, unknown-token fusing).
 *
 * <p>One word is encoded by starting from one symbol per character and repeatedly applying the merge with the lowest
 * rank, leftmost first, through a heap of candidate pairs and a doubly linked symbol list: O(n log n) per word, so a
 * single 1 MB word (SentencePiece files have no pre-tokenizer) is fine. Results for words up to {@value
 * #CACHE_MAX_WORD} chars are cached. Thread-safe.
 */
final class BpeModel {

    static final int CACHE_MAX_WORD = 256;
    private static final int CACHE_MAX_ENTRIES = 200_000;

    private final Map<String, Integer> vocab;
    private final PairTable merges;
    private final int[] mergeResult; // (merges) id produced by the merge of that rank
    private final int unkId; // -1 when the model has no unknown token
    private final boolean fuseUnk;
    private final boolean ignoreMerges;
    private final int[] byteTokens; // (256) id of "<0xAB>" per byte, or null without byte fallback
    private final String continuingSubwordPrefix;
    private final String endOfWordSuffix;
    private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();

    /**
     * @param merges pairs in rank order (rank = index); a pair listed twice keeps its last rank, as the reference
     * @throws TokenizerFormatException if a merge names a piece not in the vocab, or the unknown token is missing
     */
    BpeModel(
            String source,
            Map<String, Integer> vocab,
            List<String[]> merges,
            String unkToken,
            boolean fuseUnk,
            boolean byteFallback,
            boolean ignoreMerges,
            String continuingSubwordPrefix,
            String endOfWordSuffix) {
        this.vocab = Map.copyOf(vocab);
        this.fuseUnk = fuseUnk;
        this.ignoreMerges = ignoreMerges;
        this.continuingSubwordPrefix = continuingSubwordPrefix == null ? "" : continuingSubwordPrefix;
        this.endOfWordSuffix = endOfWordSuffix == null ? "" : endOfWordSuffix;
        if (unkToken != null) {
            Integer id = vocab.get(unkToken);
            if (id == null) {
                throw new TokenizerFormatException(
                        source,
                        "model.unk_token '%s' is not in model.vocab; add it or set unk_token to null"
                                .formatted(unkToken));
            }
            this.unkId = id;
        } else {
            this.unkId = -1;
        }
        if (byteFallback) {
            byteTokens = new int[256];
            for (int b = 0; b < 256; b++) {
                Integer id = vocab.get("<0x%02X>".formatted(b));
                byteTokens[b] = id == null ? -1 : id;
            }
        } else {
            byteTokens = null;
        }
        this.merges = new PairTable(merges.size());
        this.mergeResult = new int[merges.size()];
        int prefixLen = this.continuingSubwordPrefix.length();
        for (int rank = 0; rank < merges.size(); rank++) {
            String[] pair = merges.get(rank);
            Integer a = vocab.get(pair[0]);
            Integer b = vocab.get(pair[1]);
            if (a == null || b == null) {
                throw new TokenizerFormatException(
                        source,
                        "merge #%d ('%s' '%s') uses a piece that is not in model.vocab"
                                .formatted(rank, pair[0], pair[1]));
            }
            String right = prefixLen > 0 && pair[1].startsWith(this.continuingSubwordPrefix)
                    ? pair[1].substring(prefixLen)
                    : pair[1];
            Integer merged = vocab.get(pair[0] + right);
            if (merged == null) {
                throw new TokenizerFormatException(
                        source,
                        "merge #%d ('%s' '%s') produces '%s', which is not in model.vocab"
                                .formatted(rank, pair[0], pair[1], pair[0] + right));
            }
            this.merges.put(a, b, rank);
            mergeResult[rank] = merged;
        }
    }

    /** Exact vocab lookup. */
    OptionalInt tokenId(String piece) {
        Integer id = vocab.get(piece);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    Map<String, Integer> vocab() {
        return vocab;
    }

    /**
     * Encodes one pre-tokenized word and appends its ids.
     *
     * @throws IllegalArgumentException if a character is not in the vocab and the model has neither byte fallback
     *     nor an unknown token
     */
    void encode(String word, IntList out) {
        if (word.isEmpty()) {
            return;
        }
        if (ignoreMerges) {
            Integer whole = vocab.get(word);
            if (whole != null) {
                out.add(whole);
                return;
            }
        }
        boolean cacheable = word.length() <= CACHE_MAX_WORD;
        if (cacheable) {
            int[] hit = cache.get(word);
            if (hit != null) {
                out.addAll(hit);
                return;
            }
        }
        int[] ids = mergeWord(word);
        if (cacheable && cache.size() < CACHE_MAX_ENTRIES) {
            cache.put(word, ids);
        }
        out.addAll(ids);
    }

    private int[] mergeWord(String word) {
        IntList symbols = initialSymbols(word);
        int n = symbols.size();
        int[] id = symbols.toArray();
        int[] prev = new int[n];
        int[] next = new int[n];
        boolean[] dead = new boolean[n];
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            if (i + 1 < n) {
                int rank = merges.get(id[i], id[i + 1]);
                if (rank >= 0) {
                    heap.push(((long) rank << 32) | i);
                }
            }
        }
        int alive = n;
        while (!heap.isEmpty()) {
            long top = heap.pop();
            int rank = (int) (top >>> 32);
            int pos = (int) top;
            int right = next[pos];
            // skip queue entries made stale by an earlier merge
            if (dead[pos] || right < 0 || merges.get(id[pos], id[right]) != rank) {
                continue;
            }
            id[pos] = mergeResult[rank];
            dead[right] = true;
            alive--;
            next[pos] = next[right];
            if (next[right] >= 0) {
                prev[next[right]] = pos;
            }
            if (prev[pos] >= 0) {
                int r = merges.get(id[prev[pos]], id[pos]);
                if (r >= 0) {
                    heap.push(((long) r << 32) | prev[pos]);
                }
            }
            if (next[pos] >= 0) {
                int r = merges.get(id[pos], id[next[pos]]);
                if (r >= 0) {
                    heap.push(((long) r << 32) | pos);
                }
            }
        }
        int[] result = new int[alive];
        int k = 0;
        for (int i = 0; i < n && k < alive; i = next[i] < 0 ? n : next[i]) {
            result[k++] = id[i];
        }
        return result;
    }

    /** One symbol per character: its vocab id, its UTF-8 byte tokens, or the (optionally fused) unknown token. */
    private IntList initialSymbols(String word) {
        IntList out = new IntList(word.length());
        boolean pendingUnk = false;
        int len = word.length();
        for (int i = 0; i < len; ) {
            int cp = word.codePointAt(i);
            int end = i + Character.charCount(cp);
            String s = word.substring(i, end);
            if (i > 0 && !continuingSubwordPrefix.isEmpty()) {
                s = continuingSubwordPrefix + s;
            }
            if (end == len && !endOfWordSuffix.isEmpty()) {
                s = s + endOfWordSuffix;
            }
            i = end;
            Integer tokenId = vocab.get(s);
            if (tokenId != null) {
                if (pendingUnk) {
                    out.add(unkId);
                    pendingUnk = false;
                }
                out.add(tokenId);
                continue;
            }
            if (byteTokens != null && addBytes(s, out)) {
                continue;
            }
            if (unkId < 0) {
                throw new IllegalArgumentException(
                        "character U+%04X is not in the vocab and the model has no unk_token".formatted(cp));
            }
            if (pendingUnk && !fuseUnk) {
                out.add(unkId);
            }
            pendingUnk = true;
        }
        if (pendingUnk) {
            out.add(unkId);
        }
        return out;
    }

    private boolean addBytes(String s, IntList out) {
        byte[] bytes = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        for (byte b : bytes) {
            if (byteTokens[b & 0xFF] < 0) {
                return false;
            }
        }
        for (byte b : bytes) {
            out.add(byteTokens[b & 0xFF]);
        }
        return true;
    }

    /** Open-addressing map from an id pair to its merge rank. Immutable after construction. */
    private static final class PairTable {
        private final long[] keys;
        private final int[] values;
        private final int mask;

        PairTable(int expected) {
            int cap = Integer.highestOneBit(Math.max(4, expected * 2)) * 2;
            keys = new long[cap];
            values = new int[cap];
            Arrays.fill(keys, -1L);
            mask = cap - 1;
        }

        void put(int a, int b, int rank) {
            long key = ((long) a << 32) | (b & 0xFFFFFFFFL);
            int slot = slot(key);
            while (keys[slot] != -1L && keys[slot] != key) {
                slot = (slot + 1) & mask;
            }
            keys[slot] = key;
            values[slot] = rank;
        }

        /** The rank of merging {@code (a, b)}, or -1. */
        int get(int a, int b) {
            long key = ((long) a << 32) | (b & 0xFFFFFFFFL);
            int slot = slot(key);
            while (true) {
                long k = keys[slot];
                if (k == key) {
                    return values[slot];
                }
                if (k == -1L) {
                    return -1;
                }
                slot = (slot + 1) & mask;
            }
        }

        private int slot(long key) {
            long h = key * 0x9E3779B97F4A7C15L;
            return (int) (h >>> 32) & mask;
        }
    }
}
