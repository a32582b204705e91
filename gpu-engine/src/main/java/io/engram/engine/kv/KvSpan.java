package io.engram.engine.kv;

/**
 * A run of slots {@code [from, to)} of one block that a head attends to, and the positions RoPE gives its keys.
 *
 * @param positions how key positions are chosen
 * @param base for {@link Positions#CONTIGUOUS}: position of slot {@code from}; for {@link Positions#FIXED}: the one
 *     position of every key; unused for {@link Positions#STORED}
 */
public record KvSpan(KvBlock block, int from, int to, Positions positions, int base) {

    public enum Positions {
        /** The absolute positions the tokens were written at (exact attention). */
        STORED,
        /** {@code base, base+1, ...}: re-indexed inside the cache (StreamingLLM). */
        CONTIGUOUS,
        /** Every key at {@code base} (InfLLM's retrieved units at a fixed distant position). */
        FIXED
    }

    public KvSpan {
        if (from < 0 || to < from || to > block.capacity()) {
            throw new IllegalArgumentException("span [%d, %d) outside %s".formatted(from, to, block));
        }
    }

    public static KvSpan stored(KvBlock block) {
        return new KvSpan(block, 0, block.length(), Positions.STORED, 0);
    }

    public int length() {
        return to - from;
    }

    /** RoPE position of slot {@code slot} (within {@code [from, to)}). */
    public int positionOf(int slot) {
        return switch (positions) {
            case STORED -> block.position(slot);
            case CONTIGUOUS -> base + (slot - from);
            case FIXED -> base;
        };
    }
}
