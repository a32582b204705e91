package io.engram.engine.memory.retrieval;

import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.retrieval.RetrievalMemory.Unit;
import io.engram.engine.text.Bm25;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * The units whose tokens best match a question's (BM25 over the session's units of the question's tokens and pairs of
 * adjacent tokens, document frequencies counted over the same units): Engram's lexical half of retrieval on question
 * steps, beside the representative-key ranking of InfLLM and EM-LLM. A fact is stored where its key words are; the question repeats those words, so their rare tokens
 * find the fact's unit wherever it lies in the stream, however the query vector of a small model ranks it. Tokens
 * every unit holds ("the", spaces) weigh about nothing; the template's tokens ("Question:") weigh what they are worth
 * in this stream.
 */
final class LexicalMatch {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(LexicalMatch.class);

    private LexicalMatch() {}

    /**
     * The {@code count} best units for {@code query} (indices into {@code units}, best first; ties to the later unit),
     * only units that share a token of the query with a positive weight.
     */
    static List<Integer> top(List<Unit> units, KvCache cache, int[] query, int count) {
        double[] score = scores(units, cache, query);
        List<Integer> out = new ArrayList<>(count);
        boolean[] taken = new boolean[score.length];
        for (int k = 0; k < count; k++) {
            int best = -1;
            for (int i = 0; i < score.length; i++) {
                if (!taken[i] && score[i] > 0 && (best < 0 || score[i] >= score[best])) {
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            taken[best] = true;
            out.add(best);
        }
        return out;
    }

    /**
     * On a question's steps (a transient section), the units its tokens match lexically ({@link LexicalMatch}),
     * computed over the section's tokens as its prefill steps append them; answer tokens (single-token steps) leave the
     * match as it is.
     */
    static void matchQuestion(RetrievalState st, KvCache cache, int lexicalUnits, long firstSeq, int n) {
        if (lexicalUnits == 0 || !cache.isTransient() || st.exact) {
            st.lexical = List.of();
            st.lexicalTokens = -1;
            return;
        }
        long from = cache.transientFrom();
        long end = firstSeq + n;
        if (n == 1 && st.lexicalTokens >= 0 || end - from == st.lexicalTokens) {
            return;
        }
        int[] query = new int[(int) (end - from)];
        for (long s = from; s < end; s++) {
            KvBlock b = cache.blockAt(s);
            query[(int) (s - from)] = b.token((int) (s - b.firstSeq()));
        }
        long t0 = System.nanoTime();
        st.lexical = LexicalMatch.top(st.units, cache, query, lexicalUnits);
        st.lexicalTokens = end - from;
        if (LOG.isDebugEnabled()) {
            LOG.debug(
                    "question of {} tokens matched units {} of {} in {} ms",
                    query.length,
                    st.lexical.stream()
                            .map(i -> "[" + st.units.get(i).start() + ", "
                                    + st.units.get(i).end() + ")")
                            .toList(),
                    st.units.size(),
                    (System.nanoTime() - t0) / 1_000_000);
        }
    }

    /** Adds the units the question matched to {@code picked}, each with the unit after it. */
    static void addMatched(RetrievalState st, Set<Integer> picked) {
        for (int i : st.lexical) { // each matched unit with the one after it: a fact's value follows its key
            picked.add(i);
            if (i + 1 < st.units.size()) {
                picked.add(i + 1);
            }
        }
    }

    /**
     * BM25 for every unit of the query's terms: its distinct tokens and its distinct pairs of adjacent tokens (a key of
     * two words, "wandering archive", stands together only where its fact is, while each word alone may stand in many
     * units).
     */
    static double[] scores(List<Unit> units, KvCache cache, int[] query) {
        long[] terms = terms(query);
        double[] out = new double[units.size()];
        if (terms.length == 0 || units.isEmpty()) {
            return out;
        }
        int[][] tf = new int[units.size()][];
        int[] lengths = new int[units.size()];
        for (int u = 0; u < units.size(); u++) {
            tf[u] = termCounts(units.get(u), cache, terms);
            lengths[u] = units.get(u).length();
        }
        return Bm25.scores(tf, lengths);
    }

    /** The distinct terms of {@code query}, sorted: its tokens and its pairs of adjacent tokens ({@link #pair}). */
    static long[] terms(int[] query) {
        java.util.TreeSet<Long> terms = new java.util.TreeSet<>();
        for (int i = 0; i < query.length; i++) {
            if (query[i] >= 0) {
                terms.add((long) query[i]);
                if (i > 0 && query[i - 1] >= 0) {
                    terms.add(pair(query[i - 1], query[i]));
                }
            }
        }
        return terms.stream().mapToLong(Long::longValue).toArray();
    }

    /** The term of token {@code b} right after token {@code a} (above every single token's term). */
    static long pair(int a, int b) {
        return ((long) a + 1) << 32 | b;
    }

    /** How often each of {@code terms} (sorted) occurs in the unit's tokens. */
    private static int[] termCounts(Unit unit, KvCache cache, long[] terms) {
        int[] counts = new int[terms.length];
        int prev = -1;
        for (KvBlock b : RetrievalMemory.blocksOf(cache, unit.start(), unit.end())) {
            int from = (int) Math.max(0, unit.start() - b.firstSeq());
            int to = (int) Math.min(b.length(), unit.end() - b.firstSeq());
            for (int slot = from; slot < to; slot++) {
                int token = b.token(slot);
                int i = Arrays.binarySearch(terms, token);
                if (i >= 0) {
                    counts[i]++;
                    if (prev >= 0 && (i = Arrays.binarySearch(terms, pair(prev, token))) >= 0) {
                        counts[i]++;
                    }
                }
                prev = token;
            }
        }
        return counts;
    }
}
