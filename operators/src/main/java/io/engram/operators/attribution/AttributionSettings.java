package io.engram.operators.attribution;

import io.engram.engine.attribution.TracSearch;
import java.io.Serializable;

/**
 * Which attribution tiers run and their budgets; validated here, shipped with the job graph.
 *
 * @param tier which tiers run
 * @param topK segments an attribution (and an answer's citations) names at most (TracLLM: 5)
 * @param segmentWords words per segment (TracLLM: 100), cut at the next sentence end
 * @param maxCandidates segments the precise tier searches at most, taken by fast-tier score
 * @param maxContextTokens tokens those candidates may hold together (each value call re-runs them)
 * @param permutations Shapley permutations per search level (0: leave-one-out only)
 * @param denoiseFraction share of the largest Shapley gains averaged (TracLLM: 0.2)
 * @param looWeight factor on leave-one-out scores in the ensemble (TracLLM: 2)
 * @param sliceMillis processing time the precise operator spends per call before it yields to other work
 * @param maxPending requests a session's precise queue holds at most (the one being searched included); a request
 *     arriving at a full queue is answered at once with a SKIPPED_BACKLOG record instead of being searched
 */
public record AttributionSettings(
        Tier tier,
        int topK,
        int segmentWords,
        int maxCandidates,
        int maxContextTokens,
        int permutations,
        double denoiseFraction,
        double looWeight,
        long sliceMillis,
        int maxPending)
        implements Serializable {

    /** Requests a session's precise queue holds at most by default. */
    public static final int DEFAULT_MAX_PENDING = 32;

    /** Which tiers run. */
    public enum Tier {
        /** No citations, no attribution records. */
        OFF,
        /** Citations on answers and a FAST attribution record, from the attention paid while answering. */
        FAST,
        /** Citations (fast) on answers and a PRECISE attribution record later, from re-scoring the answer. */
        PRECISE,
        /** Citations, a FAST record and a PRECISE record later. */
        BOTH;

        public boolean cites() {
            return this != OFF;
        }

        public boolean fastRecord() {
            return this == FAST || this == BOTH;
        }

        public boolean precise() {
            return this == PRECISE || this == BOTH;
        }
    }

    public AttributionSettings {
        if (tier == null) {
            throw new IllegalArgumentException("an attribution tier is required (OFF, FAST, PRECISE or BOTH)");
        }
        if (topK < 1
                || segmentWords < 1
                || maxCandidates < 1
                || maxContextTokens < 1
                || sliceMillis < 1
                || maxPending < 1) {
            throw new IllegalArgumentException(
                    "top-k, segment words, candidates, context tokens, the slice and max pending must be >= 1: "
                            + this);
        }
        new TracSearch.Settings(topK, permutations, denoiseFraction, looWeight, 0); // validates the search's own ranges
    }

    /** The settings with {@link #DEFAULT_MAX_PENDING} requests per session at most. */
    public AttributionSettings(
            Tier tier,
            int topK,
            int segmentWords,
            int maxCandidates,
            int maxContextTokens,
            int permutations,
            double denoiseFraction,
            double looWeight,
            long sliceMillis) {
        this(
                tier,
                topK,
                segmentWords,
                maxCandidates,
                maxContextTokens,
                permutations,
                denoiseFraction,
                looWeight,
                sliceMillis,
                DEFAULT_MAX_PENDING);
    }

    /**
     * Defaults: both tiers, TracLLM's K 5, 100 words, beta 0.2, w 2; 5 permutations; 16 candidates of 2048 tokens at most;
     * 32 pending requests per session.
     */
    public static AttributionSettings defaults() {
        return new AttributionSettings(Tier.BOTH, 5, 100, 16, 2048, 5, 0.2, 2.0, 200, DEFAULT_MAX_PENDING);
    }

    public AttributionSettings withTier(Tier t) {
        return new AttributionSettings(
                t,
                topK,
                segmentWords,
                maxCandidates,
                maxContextTokens,
                permutations,
                denoiseFraction,
                looWeight,
                sliceMillis,
                maxPending);
    }

    public AttributionSettings withMaxPending(int n) {
        return new AttributionSettings(
                tier,
                topK,
                segmentWords,
                maxCandidates,
                maxContextTokens,
                permutations,
                denoiseFraction,
                looWeight,
                sliceMillis,
                n);
    }

    /** The search settings for one query (the seed comes from the query id, so a replay searches alike). */
    public TracSearch.Settings search(String queryId) {
        return new TracSearch.Settings(topK, permutations, denoiseFraction, looWeight, queryId.hashCode());
    }
}
