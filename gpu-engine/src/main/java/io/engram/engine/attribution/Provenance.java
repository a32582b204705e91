package io.engram.engine.attribution;

/**
 * Packs where a token came from into the {@code long} source tag the KV cache keeps per token: the index of the source
 * event in its session (upper 32 bits) and the char offset of the token's text in that event (lower 32 bits). The
 * state module maps event indexes to Kafka coordinates.
 */
public final class Provenance {
    public static final long NONE = -1L;

    private Provenance() {}

    public static long pack(int eventIndex, int charOffset) {
        if (eventIndex < 0 || charOffset < 0) {
            throw new IllegalArgumentException("event index and char offset must be >= 0");
        }
        return ((long) eventIndex << 32) | (charOffset & 0xFFFFFFFFL);
    }

    public static int eventIndex(long tag) {
        return (int) (tag >>> 32);
    }

    public static int charOffset(long tag) {
        return (int) tag;
    }
}
