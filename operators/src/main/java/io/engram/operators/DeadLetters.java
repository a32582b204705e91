package io.engram.operators;

import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.SourceCoordinates;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.util.OutputTag;

/**
 * Builds {@link DeadLetter}s, the one shape every refused input takes, wherever it is refused.
 *
 * <p>The decoder refuses what it can judge from one record alone. Whatever needs the session's state (a query for a
 * session that has no memory: {@link ErrorClass#UNKNOWN_SESSION}) is decided by the session operator, which uses {@link
 * #forEvent} and emits the result on its own {@code deadLetters} stream; the job routes both to the dead-letter topic.
 */
public final class DeadLetters {

    /** Side output of refused records; its type information is Avro's, never Kryo. */
    public static final OutputTag<DeadLetter> TAG =
            new OutputTag<>("engram-dead-letters", new AvroTypeInfo<>(DeadLetter.class));

    /** Key bytes a dead letter keeps; a longer key keeps its first bytes ({@code key_length} has the whole length). */
    public static final int MAX_KEY_BYTES = 1024;
    /**
     * Value bytes a dead letter keeps; a longer value keeps its first bytes, with {@code value_length} and {@code
     * value_sha256} of the whole. With the other bounds a dead letter stays far below the sink's 1 MiB request limit
     * whatever the input (a record over that size would fail the task and replay forever).
     */
    public static final int MAX_VALUE_BYTES = 256 * 1024;
    /** Characters of the reason and the exception text a dead letter keeps. */
    public static final int MAX_TEXT_CHARS = 4096;
    /** Characters of a session or event id a dead letter keeps. */
    public static final int MAX_ID_CHARS = 256;

    private DeadLetters() {}

    /** {@code s} cut to {@code max} characters (ending in "...", never inside a surrogate pair), or null. */
    public static String bounded(String s, int max) {
        if (s == null || s.length() <= max) {
            return s;
        }
        int cut = max - 3;
        if (Character.isHighSurrogate(s.charAt(cut - 1))) {
            cut--;
        }
        return s.substring(0, cut) + "...";
    }

    private static ByteBuffer head(byte[] b, int max) {
        return b == null ? null : ByteBuffer.wrap(b, 0, Math.min(b.length, max)).slice();
    }

    private static String sha256(byte[] b) {
        if (b == null) {
            return null;
        }
        try {
            return java.util.HexFormat.of()
                    .formatHex(
                            java.security.MessageDigest.getInstance("SHA-256").digest(b));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JDK", e);
        }
    }

    /**
     * A dead letter for a raw record, keeping its key and value bytes as read.
     *
     * @param cause the exception behind the refusal, or null
     * @param sessionId the session the record named, when it could be read, or null
     * @param eventId the event id the record named, when it could be read, or null
     */
    public static DeadLetter forRecord(
            RawRecord record, ErrorClass errorClass, String reason, Throwable cause, String sessionId, String eventId) {
        return DeadLetter.newBuilder()
                .setSource(new SourceCoordinates(record.topic, record.partition, record.offset))
                .setKey(head(record.key, MAX_KEY_BYTES))
                .setKeyLength(record.key == null ? -1 : record.key.length)
                .setValue(head(record.value, MAX_VALUE_BYTES))
                .setValueLength(record.value == null ? -1 : record.value.length)
                .setValueSha256(sha256(record.value))
                .setReason(bounded(record.coordinates() + ": " + reason, MAX_TEXT_CHARS))
                .setErrorClass(errorClass)
                .setException(
                        cause == null
                                ? null
                                : bounded(cause.getClass().getName() + ": " + cause.getMessage(), MAX_TEXT_CHARS))
                .setSessionId(bounded(sessionId, MAX_ID_CHARS))
                .setEventId(bounded(eventId, MAX_ID_CHARS))
                .setTimestampMs(record.timestampMs)
                .build();
    }

    /**
     * A dead letter for an event that decoded but cannot be used, e.g. a query for an unknown session. The value is the
     * event re-encoded (single-object encoding, so it can be replayed as is); the key is the session id. The event carries
     * no Kafka timestamp, so {@code timestamp_ms} is the event's own.
     *
     * @throws IllegalArgumentException if the event has no {@code source}: only decoded events can be dead-lettered here
     */
    public static DeadLetter forEvent(EngramEvent event, ErrorClass errorClass, String reason) {
        return forEvent(event, errorClass, reason, null);
    }

    /** {@link #forEvent(EngramEvent, ErrorClass, String)} with the exception behind it (class and message, bounded). */
    public static DeadLetter forEvent(EngramEvent event, ErrorClass errorClass, String reason, Throwable cause) {
        SourceCoordinates source = event.getSource();
        if (source == null) {
            throw new IllegalArgumentException("event " + event.getEventId() + " of session " + event.getSessionId()
                    + " has no source coordinates; only events from EventDecoder can be dead-lettered");
        }
        byte[] value;
        try {
            ByteBuffer encoded = EngramEvent.getEncoder().encode(event);
            value = new byte[encoded.remaining()];
            encoded.get(value);
        } catch (IOException e) {
            throw new UncheckedIOException("re-encoding event " + event.getEventId() + " for its dead letter", e);
        }
        byte[] key = event.getSessionId().getBytes(StandardCharsets.UTF_8);
        return DeadLetter.newBuilder()
                .setSource(source)
                .setKey(head(key, MAX_KEY_BYTES))
                .setKeyLength(key.length)
                .setValue(head(value, MAX_VALUE_BYTES))
                .setValueLength(value.length)
                .setValueSha256(sha256(value))
                .setReason(bounded(
                        source.getTopic() + "-" + source.getPartition() + "@" + source.getOffset() + ": " + reason,
                        MAX_TEXT_CHARS))
                .setErrorClass(errorClass)
                .setSessionId(bounded(event.getSessionId(), MAX_ID_CHARS))
                .setEventId(bounded(event.getEventId(), MAX_ID_CHARS))
                .setTimestampMs(event.getTimestampMs())
                .setException(
                        cause == null
                                ? null
                                : bounded(cause.getClass().getName() + ": " + cause.getMessage(), MAX_TEXT_CHARS))
                .build();
    }
}
