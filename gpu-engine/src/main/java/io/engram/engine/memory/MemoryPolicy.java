package io.engram.engine.memory;

import io.engram.engine.kv.AttentionObserver;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;

/**
 * Decides what each KV head sees at one forward step and at which positions. Never touches tensor memory and never
 * calls a backend: it chooses spans of blocks, and asks the cache to offload or bring back layers of blocks. A policy
 * whose budget covers the whole input must produce the plan of full attention.
 *
 * <p>One instance serves many sessions: whatever a policy remembers about a session (scores, representative keys,
 * retained tokens) lives in {@link KvCache#policyState}.
 *
 * <p>The engine calls, per forward step of a sequence: {@link #plan} once (after the step's tokens are appended),
 * then {@link #planLayer} for every layer (with the step's mean query when {@link #needsQueries} said so), then
 * {@link #afterStep} once the step's logits (and token scores, when {@link #needsTokenScores}) are known.
 */
public interface MemoryPolicy {

    /**
     * The plan for a step whose {@code n} query tokens are already appended to {@code cache} at sequence indices
     * {@code firstSeq .. firstSeq+n-1}.
     */
    AttentionPlan plan(KvCache cache, long firstSeq, int n, int kvHeads);

    /** Whether {@link #planLayer} of this step wants the mean of the step's queries. */
    default boolean needsQueries(KvCache cache, long firstSeq, int n) {
        return false;
    }

    /**
     * The plan of one layer (retrieval policies select memory per layer). Every block a returned span names must be
     * resident for {@code layer} ({@link KvCache#ensureResident}); the step plan's observer must be kept.
     *
     * @param queryMean the step's queries averaged over its tokens, un-rotated, {@code (heads * headDim)}; null unless
     *     {@link #needsQueries} returned true
     */
    default AttentionPlan planLayer(KvCache cache, int layer, AttentionPlan stepPlan, float[] queryMean) {
        return stepPlan;
    }

    /**
     * Whether the engine must score every token it appends ({@code -log p(token | earlier)}, stored with the token in
     * its block): the forward then computes logits for every row.
     */
    default boolean needsTokenScores() {
        return false;
    }

    /**
     * Whether the policy attends to a bounded part of the memory and moves the rest out of engine memory (retrieval and
     * streaming policies): stored memory is then read back lazily, each block's layers decoded when a step plans them,
     * instead of every block at once. Full attention reads every block every step, so it loads them eagerly.
     */
    default boolean offloadsMemory() {
        return false;
    }

    /** Called after the step's forward, with token scores written; policies pack, evict and offload here. */
    default void afterStep(KvCache cache, long firstSeq, int n) {}

    /**
     * A turn (one content event) of {@code tokens} tokens starting at {@code firstSeq} is about to be ingested, in one
     * or more steps: policies that evict per turn (SirLLM) make room for it here, once, and not between its steps.
     */
    default void beginTurn(KvCache cache, long firstSeq, int tokens) {}

    /** The turn {@link #beginTurn} announced has been ingested (or failed). */
    default void endTurn(KvCache cache) {}

    /**
     * The cache's tokens so far are lasting memory: no truncate will go back before {@link KvCache#nextSeq()} (a session
     * after each ingested content event; transient questions and answers only ever come after it). Policies may then
     * drop what no later step can attend to (DuoAttention: streaming heads' rows behind their window).
     */
    default void committed(KvCache cache) {}

    /**
     * The session's policy state to store, with units from index {@code fromUnit} on; null for policies that keep
     * none (full attention, StreamingLLM).
     */
    default PolicySnapshot snapshot(KvCache cache, int fromUnit) {
        return null;
    }

    /**
     * Restores what {@link #snapshot} returned (with {@code fromUnit} 0) into a cache rebuilt for the session; the
     * cache holds the session's blocks and is at the snapshot's sequence index.
     */
    default void restore(KvCache cache, PolicySnapshot snapshot) {}

    /**
     * For episodic policies (EM-LLM), the start of the latest event boundary found in the session (tokens before it
     * belong to closed episodes): summaries are cut there. -1 for policies without episodes.
     */
    default long lastEpisodeBoundary(KvCache cache) {
        return -1;
    }

    /** This policy with {@code observer} receiving the attention mass of every layer plan, besides its own observers. */
    default MemoryPolicy observedBy(AttentionObserver observer) {
        return new ForwardingMemoryPolicy(this) {
            @Override
            public AttentionPlan plan(KvCache cache, long firstSeq, int n, int kvHeads) {
                observer.beginStep(firstSeq, n);
                return inner.plan(cache, firstSeq, n, kvHeads);
            }

            @Override
            public AttentionPlan planLayer(KvCache cache, int layer, AttentionPlan stepPlan, float[] queryMean) {
                return inner.planLayer(cache, layer, stepPlan, queryMean).withObserver(observer);
            }
        };
    }
}
