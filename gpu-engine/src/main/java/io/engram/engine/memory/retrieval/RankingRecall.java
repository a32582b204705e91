package io.engram.engine.memory.retrieval;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.DoubleAdder;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counts a retrieval policy's rankings and, every {@link #SAMPLE_EVERY}th one over a {@link UnitIndex}, checks the units
 * it picked against an exact scan: the recall that bench memory prints next to decode speed.
 */
public final class RankingRecall {

    /**
     * Every this many rankings of a session over an index, the exact scan is done too: rarely enough that it costs
     * under 1% of a decode step at a million tokens (every 16th took 11% of EM-LLM's decode at 262K tokens).
     */
    static final int SAMPLE_EVERY = 256;

    /** Rankings served, those over an index, the mean share of units they scored, and the recall of sampled ones. */
    public record Stats(long rankings, long indexedRankings, double meanScoredShare, long sampled, double recall) {}

    private final LongAdder rankings = new LongAdder();
    private final LongAdder indexedRankings = new LongAdder();
    private final DoubleAdder scoredShare = new DoubleAdder();
    private final LongAdder sampledWanted = new LongAdder();
    private final LongAdder sampledHits = new LongAdder();
    private final LongAdder samples = new LongAdder();

    public Stats stats() {
        long idx = indexedRankings.sum();
        long wanted = sampledWanted.sum();
        return new Stats(
                rankings.sum(),
                idx,
                idx == 0 ? 1.0 : scoredShare.sum() / idx,
                samples.sum(),
                wanted == 0 ? 1.0 : (double) sampledHits.sum() / wanted);
    }

    /** How many of the drawn units ({@code rank}, in draw order) were picked by similarity (the first ones drawn). */
    static int similar(Set<Integer> picked, List<Integer> rank) {
        int n = 0;
        for (int i : rank) {
            if (picked.contains(i)) {
                n++;
            }
        }
        return n;
    }

    /** Counts one ranking; {@code seen}: the session's rankings before it (every SAMPLE_EVERY-th is checked). */
    void measure(
            UnitIndex index, long seen, int layer, float[] q, UnitRanking ranking, List<Integer> rank, int wanted) {
        rankings.increment();
        if (!index.clustered()) {
            return;
        }
        indexedRankings.increment();
        scoredShare.add((double) ranking.scored() / Math.max(1, index.size()));
        if (seen % SAMPLE_EVERY != 0 || wanted == 0) {
            return;
        }
        Set<Integer> got = new HashSet<>(rank.subList(0, Math.min(wanted, rank.size())));
        UnitRanking exact = index.exact(layer, q);
        int hits = 0;
        for (int i = 0; i < wanted && exact.hasNext(); i++) {
            hits += got.contains(exact.next()) ? 1 : 0;
        }
        samples.increment();
        sampledWanted.add(wanted);
        sampledHits.add(hits);
    }
}
