package io.engram.engine.kv;

/**
 * Receives how much attention the keys of a step received: the basis of InfLLM's representative tokens, SirLLM-style
 * scores and fast attribution. Called once per (layer, KV head, span) at the end of an attention op, on the caller's
 * thread.
 */
@FunctionalInterface
public interface AttentionObserver {
    /**
     * @param mass attention probability of slot {@code span.from()+j} at {@code mass[offset+j]}, summed over the step's
     *     queries and the query heads that share {@code kvHead}; valid only during the call
     */
    void observe(int layer, int kvHead, KvSpan span, float[] mass, int offset);

    /**
     * Called by {@link io.engram.engine.memory.MemoryPolicy#observedBy} before the observations of a forward step of
     * {@code n} query tokens at sequence indices {@code firstSeq..}; observers that weigh steps differently (the fast
     * attribution tier counts decode steps) override it.
     */
    default void beginStep(long firstSeq, int n) {}
}
