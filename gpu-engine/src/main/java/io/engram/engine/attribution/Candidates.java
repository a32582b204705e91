package io.engram.engine.attribution;

import io.engram.engine.text.Bm25;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The precise tier's pre-filter: which segments of the whole stream TracLLM's search considers. Re-scoring costs a
 * forward over the candidates' tokens per value call, so the candidates are bounded in number and tokens. They come from
 * two rankings taken in turn: the fast tier's (the attention the answer paid each segment; it only sees what the memory
 * policy retrieved) and a lexical one over every segment the session holds (BM25 of the question's and answer's tokens:
 * a fact the answer copied shares its rare tokens with the answer, wherever it lies in the stream). Ties and unscored
 * segments go by recency; the candidates are returned in memory order (the value function keeps the texts' order).
 */
public final class Candidates {
    private Candidates() {}

    /**
     * @param fastScores fast-tier score per segment index
     * @param question the question's tokens (with the prompt's, if any: common tokens weigh nothing)
     * @param answer the answer's tokens
     * @param maxCount most candidates
     * @param maxTokens most tokens the candidates hold together (a segment that does not fit is skipped)
     */
    public static List<Segment> select(
            List<Segment> segments, double[] fastScores, int[] question, int[] answer, int maxCount, int maxTokens) {
        double[] lexical = lexicalScores(segments, question, answer);
        List<Segment> byFast = ranked(segments, fastScores);
        List<Segment> byText = ranked(segments, lexical);
        Set<Segment> order = new LinkedHashSet<>();
        for (int i = 0; i < segments.size(); i++) {
            if (fastScores[byFast.get(i).index()] > 0) {
                order.add(byFast.get(i));
            }
            if (lexical[byText.get(i).index()] > 0) {
                order.add(byText.get(i));
            }
        }
        order.addAll(byFast); // then the most recent of the rest
        List<Segment> out = new ArrayList<>();
        long tokens = 0;
        for (Segment s : order) {
            if (out.size() == maxCount) {
                break;
            }
            if (tokens + s.tokens().length <= maxTokens) {
                out.add(s);
                tokens += s.tokens().length;
            }
        }
        out.sort(Comparator.comparingInt(Segment::index));
        return out;
    }

    /** Segments by score, best first; ties and unscored segments by recency. */
    private static List<Segment> ranked(List<Segment> segments, double[] scores) {
        List<Segment> order = new ArrayList<>(segments);
        order.sort(Comparator.<Segment>comparingDouble(s -> -scores[s.index()]).thenComparing(s -> -s.index()));
        return order;
    }

    /**
     * BM25 score per segment index of the distinct tokens of {@code question} and {@code answer} as the query, with
     * document frequencies over {@code segments}: tokens every segment holds (spaces, "the") score about nothing.
     */
    public static double[] lexicalScores(List<Segment> segments, int[] question, int[] answer) {
        Map<Integer, Integer> column = new HashMap<>();
        for (int[] part : new int[][] {question, answer}) {
            for (int t : part) {
                column.putIfAbsent(t, column.size());
            }
        }
        int maxIndex = -1;
        int[][] counts = new int[segments.size()][column.size()];
        int[] lengths = new int[segments.size()];
        for (int i = 0; i < segments.size(); i++) {
            Segment s = segments.get(i);
            maxIndex = Math.max(maxIndex, s.index());
            lengths[i] = s.tokens().length;
            for (int t : s.tokens()) {
                Integer c = column.get(t);
                if (c != null) {
                    counts[i][c]++;
                }
            }
        }
        double[] scores = Bm25.scores(counts, lengths);
        double[] out = new double[maxIndex + 1];
        for (int i = 0; i < segments.size(); i++) {
            out[segments.get(i).index()] = scores[i];
        }
        return out;
    }
}
