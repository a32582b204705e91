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

    private DeadLetters() {}

    /**
     * A dead letter for a raw record, keeping its key and value bytes as read.
     *
     * @param cause the exception behind the refusal, or null
     * @param sessionId the session the record named, when it could be read, or null
     * @param eventId the event id the record named, when it could be read, or null
     */
    public static DeadLetter forRecord(RawRecord record, ErrorClass errorClass, String reason, Throwable cause,
            String sessionId, String eventId) {
        return DeadLetter.newBuilder()
                .setSource(new SourceCoordinates(record.topic, record.partition, record.offset))
                .setKey(record.key == null ? null : ByteBuffer.wrap(record.key))
                .setValue(record.value == null ? null : ByteBuffer.wrap(record.value))
                .setReason(record.coordinates() + ": " + reason)
                .setErrorClass(errorClass)
                .setException(cause == null ? null : cause.getClass().getName() + ": " + cause.getMessage())
                .setSessionId(sessionId)
                .setEventId(eventId)
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
        SourceCoordinates source = event.getSource();
        if (source == null) {
            throw new IllegalArgumentException("event " + event.getEventId() + " of session " + event.getSessionId()
                    + " has no source coordinates; only events from EventDecoder can be dead-lettered");
        }
        ByteBuffer value;
        try {
            value = EngramEvent.getEncoder().encode(event);
        } catch (IOException e) {
            throw new UncheckedIOException("re-encoding event " + event.getEventId() + " for its dead letter", e);
        }
        return DeadLetter.newBuilder()
                .setSource(source)
                .setKey(ByteBuffer.wrap(event.getSessionId().getBytes(StandardCharsets.UTF_8)))
                .setValue(value)
                .setReason(source.getTopic() + "-" + source.getPartition() + "@" + source.getOffset() + ": " + reason)
                .setErrorClass(errorClass)
                .setSessionId(event.getSessionId())
                .setEventId(event.getEventId())
                .setTimestampMs(event.getTimestampMs())
                .build();
    }
}
