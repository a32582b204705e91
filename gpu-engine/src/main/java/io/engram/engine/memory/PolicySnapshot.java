package io.engram.engine.memory;

import java.util.List;

/**
 * What a memory policy knows about a session beyond its KV rows, in a form the stream job stores durably: the units
 * retrieval policies formed (with their representative keys), EM-LLM boundaries not packed yet, SirLLM's retained
 * tokens, and the attention mass gathered for tokens not packed yet (it picks the representative keys of the units they
 * will form). Taking and restoring a snapshot gives the policy the same decisions afterwards.
 *
 * @param units units from index {@code firstUnit} on (incremental snapshots leave out units already stored)
 * @param windowMass retrieval policies: per block not packed yet, the attention mass its tokens received
 */
public record PolicySnapshot(String policy, long packedEnd, int unitCount, int firstUnit, List<Unit> units, long[] boundaries,
        long[] retained, float[] retainedScores, boolean evicted, List<BlockMass> windowMass) {

    /** The attention mass of one block's tokens, {@code (layer, kvHead, slot)}, for the block starting at {@code firstSeq}. */
    public record BlockMass(long firstSeq, float[] mass) {}

    /** A unit: tokens {@code [start, end)}, an episode (variable size) or a fixed block, and per layer its keys. */
    public record Unit(long start, long end, boolean episode, float[][] repr) {}
}
