package io.engram.engine.memory;

import java.util.List;

/**
 * What a memory policy knows about a session beyond its KV rows, in a form the stream job stores durably: the units
 * retrieval policies formed (with their representative keys), EM-LLM boundaries not packed yet, SirLLM's retained
 * tokens. Taking and restoring a snapshot gives the policy the same decisions afterwards (the attention mass gathered
 * for tokens still in the local window is not part of it: it only shapes units not formed yet).
 *
 * @param units units from index {@code firstUnit} on (incremental snapshots leave out units already stored)
 */
public record PolicySnapshot(String policy, long packedEnd, int unitCount, int firstUnit, List<Unit> units, long[] boundaries,
        long[] retained, float[] retainedScores, boolean evicted) {

    /** A unit: tokens {@code [start, end)}, an episode (variable size) or a fixed block, and per layer its keys. */
    public record Unit(long start, long end, boolean episode, float[][] repr) {}
}
