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
 * @param contiguity EM-LLM: per layer, the start of each unit in its temporal-contiguity buffer (kept from step to step);
 *     empty for other policies
 */
public record PolicySnapshot(
        String policy,
        long packedEnd,
        int unitCount,
        int firstUnit,
        List<Unit> units,
        long[] boundaries,
        long[] retained,
        float[] retainedScores,
        boolean evicted,
        List<BlockMass> windowMass,
        long[][] contiguity) {

    public PolicySnapshot(
            String policy,
            long packedEnd,
            int unitCount,
            int firstUnit,
            List<Unit> units,
            long[] boundaries,
            long[] retained,
            float[] retainedScores,
            boolean evicted,
            List<BlockMass> windowMass) {
        this(
                policy,
                packedEnd,
                unitCount,
                firstUnit,
                units,
                boundaries,
                retained,
                retainedScores,
                evicted,
                windowMass,
                new long[0][]);
    }

    /** The attention mass of one block's tokens, {@code (layer, kvHead, slot)}, for the block starting at {@code firstSeq}. */
    public record BlockMass(long firstSeq, float[] mass) {}

    /**
     * A unit: tokens {@code [start, end)}, an episode (variable size) or a fixed block, per layer its keys, and per layer
     * the list of the unit index it belongs to ({@code lists}, null while the session has too few units for one): a
     * restore rebuilds the index from them without clustering again.
     */
    public record Unit(long start, long end, boolean episode, float[][] repr, int[] lists) {

        public Unit(long start, long end, boolean episode, float[][] repr) {
            this(start, end, episode, repr, null);
        }
    }
}
