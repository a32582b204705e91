package io.engram.engine.attribution;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
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

    /** BM25's term-frequency saturation and length normalisation (the usual values). */
    static final double K1 = 1.2;

    static final double B = 0.75;

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
        Set<Integer> query = new HashSet<>();
        for (int t : question) {
            query.add(t);
        }
        for (int t : answer) {
            query.add(t);
        }
        int maxIndex = -1;
        Map<Integer, Integer> df = new HashMap<>();
        long totalLength = 0;
        for (Segment s : segments) {
            maxIndex = Math.max(maxIndex, s.index());
            totalLength += s.tokens().length;
            Set<Integer> seen = new HashSet<>();
            for (int t : s.tokens()) {
                if (query.contains(t) && seen.add(t)) {
                    df.merge(t, 1, Integer::sum);
                }
            }
        }
        double[] out = new double[maxIndex + 1];
        if (segments.isEmpty() || df.isEmpty()) {
            return out;
        }
        int n = segments.size();
        double avg = (double) totalLength / n;
        for (Segment s : segments) {
            Map<Integer, Integer> tf = new HashMap<>();
            for (int t : s.tokens()) {
                if (df.containsKey(t)) {
                    tf.merge(t, 1, Integer::sum);
                }
            }
            double score = 0;
            double norm = K1 * (1 - B + B * s.tokens().length / avg);
            for (Map.Entry<Integer, Integer> e : tf.entrySet()) {
                int d = df.get(e.getKey());
                double idf = Math.log(1 + (n - d + 0.5) / (d + 0.5));
                score += idf * e.getValue() * (K1 + 1) / (e.getValue() + norm);
            }
            out[s.index()] = score;
        }
        return out;
    }
}
