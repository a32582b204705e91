package io.engram.engine.session;

import io.engram.engine.attribution.Provenance;
import java.util.List;

/**
 * A span of session memory an answer attended to (see {@link io.engram.engine.attribution.AttentionTrace#retrieved}):
 * with InfLLM/EM-LLM a retrieved unit (or the init tokens, the remainder, the local window), with full attention a block.
 *
 * @param firstSeq sequence index of the span's first token
 * @param endSeq sequence index after its last token (exclusive)
 * @param layers how many layers attended to it during the answer
 * @param eventIndices the session's event indices (see {@link Provenance}) its tokens came from, ascending; empty for
 *     spans of separators only
 */
public record RetrievedSpan(long firstSeq, long endSeq, int layers, List<Integer> eventIndices) {
    public RetrievedSpan {
        eventIndices = List.copyOf(eventIndices);
    }
}
