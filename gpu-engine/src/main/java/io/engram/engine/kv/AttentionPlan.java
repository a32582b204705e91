package io.engram.engine.kv;

import java.util.List;

/**
 * What each KV head attends to for one forward step, decided by a memory policy. Keys are visible to a query only if
 * their sequence index is not after the query's (causality by order in the stream, independent of re-assigned
 * positions), so the current chunk's own block(s) can be listed whole.
 *
 * @param spansPerKvHead for each KV head, the spans its query heads attend to, in one softmax
 * @param queryPositions RoPE position of each query token of the step
 * @param observer receives the attention mass per key after each layer's op, or null
 */
public record AttentionPlan(List<List<KvSpan>> spansPerKvHead, int[] queryPositions, AttentionObserver observer) {

    public AttentionPlan(List<List<KvSpan>> spansPerKvHead, int[] queryPositions) {
        this(spansPerKvHead, queryPositions, null);
    }

    /** The same spans for every KV head. */
    public static AttentionPlan uniform(int kvHeads, List<KvSpan> spans, int[] queryPositions) {
        return new AttentionPlan(java.util.Collections.nCopies(kvHeads, List.copyOf(spans)), queryPositions, null);
    }

    /** This plan with {@code o} observing too (after any observer it already has). */
    public AttentionPlan withObserver(AttentionObserver o) {
        if (observer == null) {
            return new AttentionPlan(spansPerKvHead, queryPositions, o);
        }
        AttentionObserver first = observer;
        return new AttentionPlan(spansPerKvHead, queryPositions, (layer, kvHead, span, mass, offset) -> {
            first.observe(layer, kvHead, span, mass, offset);
            o.observe(layer, kvHead, span, mass, offset);
        });
    }

    /** The same observer with other spans (a per-layer plan derived from a step plan). */
    public AttentionPlan withSpans(List<List<KvSpan>> spans) {
        return new AttentionPlan(spans, queryPositions, observer);
    }

    public List<KvSpan> spans(int kvHead) {
        return spansPerKvHead.get(kvHead);
    }

    /**
     * Refuses a plan of layer {@code layer} in which a KV head attends to rows dropped for it ({@link KvBlock#droppedHeads}:
     * a DuoAttention streaming head's rows behind its window). That happens only when the memory was built under another
     * head pattern, or with DuoAttention on and is now read without it: attending to the zeros would answer wrongly.
     *
     * @throws IllegalStateException naming the block, layer and head
     */
    public void requireKeptRows(int layer) {
        for (int g = 0; g < spansPerKvHead.size(); g++) {
            for (KvSpan span : spansPerKvHead.get(g)) {
                if ((span.block().droppedHeads(layer) >>> g & 1) != 0) {
                    throw new IllegalStateException(
                            ("KV head %d of layer %d attends to %s, whose rows for that head were "
                                            + "dropped (a DuoAttention streaming head behind its window): this memory was built under another "
                                            + "head pattern or with DuoAttention on. Restore that setting (engram.memory.duo.*), or RESET the "
                                            + "session")
                                    .formatted(g, layer, span.block()));
                }
            }
        }
    }
}
