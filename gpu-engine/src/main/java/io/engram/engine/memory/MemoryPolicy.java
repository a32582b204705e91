package io.engram.engine.memory;

import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;

/**
 * Decides what each KV head sees at one forward step and at which positions. Never touches tensor memory and never
 * calls a backend: it only chooses spans of blocks. A policy whose budget covers the whole input must produce the
 * plan of full attention.
 */
public interface MemoryPolicy {

    /**
     * The plan for a step whose {@code n} query tokens are already appended to {@code cache} at sequence indices
     * {@code firstSeq .. firstSeq+n-1}.
     */
    AttentionPlan plan(KvCache cache, long firstSeq, int n, int kvHeads);
}
