package io.engram.topology;

import io.engram.operators.attribution.AttributionSettings;
import io.engram.topology.options.Option;
import io.engram.topology.options.ResolvedOptions;

/** Which attribution tiers run (TracLLM-style context traceback, algorithms.md section 7) and their budgets. */
public final class AttributionOptions {
    private static final AttributionSettings D = AttributionSettings.defaults();

    public static final Option<AttributionSettings.Tier> TIER = Option.enumKey(
                    "engram.attribution.tier", AttributionSettings.Tier.class)
            .defaultValue(D.tier())
            .description(
                    "Which attribution tiers run: OFF (no citations), FAST (citations on each answer and a FAST record on the "
                            + "attributions topic, from the attention the answer paid to memory segments while it was generated; "
                            + "free), PRECISE (citations, and a PRECISE record later, from re-scoring the answer with segments "
                            + "left out: TracLLM's informed search; runs in its own operator, never delaying answers) or BOTH.");

    public static final Option<Integer> TOP_K = Option.intKey("engram.attribution.top-k")
            .defaultValue(D.topK())
            .check(n -> n > 0, "> 0")
            .description("Segments an attribution names at most, and citations an answer carries (TracLLM: 5).");

    public static final Option<Integer> SEGMENT_WORDS = Option.intKey("engram.attribution.segment-words")
            .defaultValue(D.segmentWords())
            .check(n -> n > 0, "> 0")
            .description("Words per attribution segment (TracLLM: 100); a segment ends at the first sentence end after "
                    + "that many words and never spans two source events.");

    public static final Option<Integer> CANDIDATES = Option.intKey("engram.attribution.candidates")
            .defaultValue(D.maxCandidates())
            .check(n -> n > 0, "> 0")
            .description("PRECISE: segments the search considers at most, those the answer attended to most (fast-tier "
                    + "scores); also bounded by engram.attribution.max-context-tokens.");

    public static final Option<Integer> MAX_CONTEXT_TOKENS = Option.intKey("engram.attribution.max-context-tokens")
            .defaultValue(D.maxContextTokens())
            .check(n -> n > 0, "> 0")
            .description(
                    "PRECISE: tokens the candidate segments hold together at most; every value of the search re-runs "
                            + "them through the model.");

    public static final Option<Integer> PERMUTATIONS = Option.intKey("engram.attribution.permutations")
            .defaultValue(D.permutations())
            .check(n -> n >= 0, ">= 0")
            .description("PRECISE: Shapley permutations per search level (TracLLM's README: 5 for speed; 0 scores by "
                    + "leave-one-out only). The cost grows linearly with it.");

    public static final Option<Double> DENOISE = Option.doubleKey("engram.attribution.denoise-fraction")
            .defaultValue(D.denoiseFraction())
            .check(v -> v > 0 && v <= 1, "in (0, 1]")
            .description(
                    "PRECISE: a segment's Shapley score is the mean of this share of its largest gains (TracLLM: 0.2).");

    public static final Option<Double> LOO_WEIGHT = Option.doubleKey("engram.attribution.loo-weight")
            .defaultValue(D.looWeight())
            .check(v -> v > 0, "> 0")
            .description("PRECISE: factor on leave-one-out scores before the ensemble takes the larger of them and the "
                    + "Shapley score (TracLLM: 2).");

    public static final Option<java.time.Duration> SLICE = Option.durationKey("engram.attribution.slice")
            .defaultValue(java.time.Duration.ofMillis(D.sliceMillis()))
            .check(d -> d.toMillis() >= 1, ">= 1ms")
            .description("PRECISE: processing time the attribution operator spends on a search per call before it lets "
                    + "other sessions and checkpoints go first.");

    public static final Option<Integer> MAX_PENDING = Option.intKey("engram.attribution.max-pending")
            .defaultValue(D.maxPending())
            .check(n -> n > 0, "> 0")
            .description("PRECISE: attribution requests a session may have waiting at most, the one being searched "
                    + "included. A request arriving when that many are waiting is not searched: a PRECISE record with "
                    + "status SKIPPED_BACKLOG and no segments is written for it at once (and a warning logged), so "
                    + "readers waiting for it are not left waiting. Bounds the operator's state and the delay of a "
                    + "session's precise records when answers come faster than searches finish (see "
                    + PERMUTATIONS.key() + " and " + MAX_CONTEXT_TOKENS.key() + " for a search's cost).");

    private AttributionOptions() {}

    /** The attribution settings the options describe. */
    public static AttributionSettings settings(ResolvedOptions o) {
        return new AttributionSettings(
                o.get(TIER),
                o.get(TOP_K),
                o.get(SEGMENT_WORDS),
                o.get(CANDIDATES),
                o.get(MAX_CONTEXT_TOKENS),
                o.get(PERMUTATIONS),
                o.get(DENOISE),
                o.get(LOO_WEIGHT),
                o.get(SLICE).toMillis(),
                o.get(MAX_PENDING));
    }
}
