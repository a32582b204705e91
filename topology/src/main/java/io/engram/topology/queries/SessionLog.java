package io.engram.topology.queries;

/**
 * The keys of the per-session logs ({@link SessionViews} writes them, {@link SessionReader} reads them): session id,
 * NUL, zero-padded partition and offset, so a session's records come back in topic order with one prefix scan
 * ({@link #prefix(String)}). A session's records all sit on one partition (the Kafka key is the session id), so key
 * order is arrival order.
 */
public final class SessionLog {
    private SessionLog() {}

    /** The store key of a record: session id, NUL, zero-padded partition and offset (so keys sort by offset). */
    public static String key(String session, int partition, long offset) {
        return "%s\u0000%010d%019d".formatted(session, partition, offset);
    }

    /** The prefix of every key of {@code session}. */
    public static String prefix(String session) {
        return session + '\u0000';
    }

    /** The session part of a key made by {@link #key}. */
    public static String sessionOf(String key) {
        return key.substring(0, key.lastIndexOf('\u0000'));
    }
}
