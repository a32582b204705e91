package io.engram.engine.attribution;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The precise tier's pre-filter: which segments TracLLM's search considers. Re-scoring costs a forward over the
 * candidates' tokens per value call, so the candidates are bounded in number and tokens; they are taken by fast-tier
 * score (the attention the answer paid them), ties and unscored segments by recency, and returned in memory order (the
 * value function keeps the texts' order).
 */
public final class Candidates {
    private Candidates() {}

    /**
     * @param fastScores fast-tier score per segment index
     * @param maxCount most candidates
     * @param maxTokens most tokens the candidates hold together (a segment that does not fit is skipped)
     */
    public static List<Segment> select(List<Segment> segments, double[] fastScores, int maxCount, int maxTokens) {
        List<Segment> order = new ArrayList<>(segments);
        order.sort(Comparator.<Segment>comparingDouble(s -> -fastScores[s.index()]).thenComparing(s -> -s.index()));
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
}
