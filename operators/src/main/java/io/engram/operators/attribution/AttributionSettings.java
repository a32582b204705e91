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
 */
public record AttributionSettings(Tier tier, int topK, int segmentWords, int maxCandidates, int maxContextTokens,
        int permutations, double denoiseFraction, double looWeight, long sliceMillis) implements Serializable {

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
        if (topK < 1 || segmentWords < 1 || maxCandidates < 1 || maxContextTokens < 1 || sliceMillis < 1) {
            throw new IllegalArgumentException("top-k, segment words, candidates, context tokens and the slice must be >= 1: " + this);
        }
        new TracSearch.Settings(topK, permutations, denoiseFraction, looWeight, 0); // validates the search's own ranges
    }

    /** Defaults: both tiers, TracLLM's K 5, 100 words, beta 0.2, w 2; 5 permutations; 16 candidates of 2048 tokens at most. */
    public static AttributionSettings defaults() {
        return new AttributionSettings(Tier.BOTH, 5, 100, 16, 2048, 5, 0.2, 2.0, 200);
    }

    public AttributionSettings withTier(Tier t) {
        return new AttributionSettings(t, topK, segmentWords, maxCandidates, maxContextTokens, permutations, denoiseFraction,
                looWeight, sliceMillis);
    }

    /** The search settings for one query (the seed comes from the query id, so a replay searches alike). */
    public TracSearch.Settings search(String queryId) {
        return new TracSearch.Settings(topK, permutations, denoiseFraction, looWeight, queryId.hashCode());
    }
}
