package io.engram.operators;

import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.ControlAction;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SourceCoordinates;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.IndexedRecord;
import org.apache.avro.message.BadHeaderException;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.MissingSchemaException;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns raw Kafka records into {@link EngramEvent}s, and every record it cannot use into exactly one {@link DeadLetter}
 * on {@link DeadLetters#TAG}. It never throws for bad input, so bad input never restarts the job.
 *
 * <p>Refused here, from the record alone (checked in this order): no value or an empty one ({@code UNDECODABLE}), value
 * over {@link DecoderSettings#maxEventBytes()} ({@code TOO_LARGE}), not single-object encoded or corrupt
 * ({@code UNDECODABLE}), a schema fingerprint of neither the current nor a released {@code EngramEvent} schema
 * ({@code UNKNOWN_SCHEMA}), a text field that is not valid
 * UTF-8 ({@code INVALID_UTF8}), no or blank session id ({@code MISSING_SESSION}), record key not equal to the session
 * id ({@code KEY_MISMATCH}), blank event id or blank/out-of-range query fields ({@code INVALID_EVENT}), a content kind
 * or control action this version does not know ({@code UNSUPPORTED}).
 *
 * <p>Not decidable here: whether a query names a session that has memory. That needs keyed state, so the session
 * operator decides it and builds its dead letter with {@link DeadLetters#forEvent} ({@code UNKNOWN_SESSION}).
 *
 * <p>Decoded events get {@code source} set to the record's coordinates (replacing anything the producer put there),
 * so downstream operators can cite them. A content event longer than {@link DecoderSettings#partChars()} leaves as
 * several parts ({@link ContentParts}), so checkpoints can pass between them.
 */
public class EventDecoder extends ProcessFunction<RawRecord, EngramEvent> {

    /** Type information of the decoded events (Avro, not Kryo). */
    public static final TypeInformation<EngramEvent> EVENT_TYPE = new AvroTypeInfo<>(EngramEvent.class);

    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(EventDecoder.class);
    /** Single-object encoding: 2 marker bytes and an 8-byte fingerprint before the body. */
    private static final int HEADER_BYTES = 10;

    private final DecoderSettings settings;

    private transient BinaryMessageDecoder<EngramEvent> decoder;
    /** Per writer-schema fingerprint: the slow-path UTF-8 check must walk the bytes with the schema that wrote them. */
    private transient Map<Long, Utf8Validator> utf8;

    private transient Map<Long, Schema> writers;
    private transient Counter decoded;
    private transient Counter refused;

    public EventDecoder(DecoderSettings settings) {
        this.settings = settings;
    }

    @Override
    public void open(OpenContext openContext) {
        EngramSchemas.trustEngramClasses();
        decoder = EngramSchemas.decoder(EngramEvent.class); // today's schema and every released one (schemas/README.md)
        writers = new HashMap<>();
        for (Schema writer :
                EngramSchemas.releasedWriterSchemas(EngramEvent.getClassSchema().getFullName())) {
            writers.put(SchemaNormalization.parsingFingerprint64(writer), writer);
        }
        writers.put(
                SchemaNormalization.parsingFingerprint64(EngramEvent.getClassSchema()), EngramEvent.getClassSchema());
        utf8 = new HashMap<>();
        decoded = getRuntimeContext().getMetricGroup().counter("engramEventsDecoded");
        refused = getRuntimeContext().getMetricGroup().counter("engramEventsDeadLettered");
    }

    @Override
    public void processElement(RawRecord record, Context ctx, Collector<EngramEvent> out) {
        Outcome outcome = decode(record);
        if (outcome.event != null) {
            decoded.inc();
            for (EngramEvent part : ContentParts.split(outcome.event, settings.partChars())) {
                out.collect(part);
            }
        } else {
            refused.inc();
            LOG.warn("dead letter {} {}", outcome.letter.getErrorClass(), outcome.letter.getReason());
            ctx.output(DeadLetters.TAG, outcome.letter);
        }
    }

    /** Exactly one of the fields is set. */
    private record Outcome(EngramEvent event, DeadLetter letter) {}

    private Outcome decode(RawRecord r) {
        if (r.value == null || r.value.length == 0) {
            return refuse(
                    r,
                    ErrorClass.UNDECODABLE,
                    "record has no value; expected a single-object encoded EngramEvent",
                    null,
                    null);
        }
        if (r.value.length > settings.maxEventBytes()) {
            return refuse(
                    r,
                    ErrorClass.TOO_LARGE,
                    "value is %d bytes, over the limit of %d bytes".formatted(r.value.length, settings.maxEventBytes()),
                    null,
                    null);
        }
        EngramEvent event;
        try {
            event = decoder.decode(r.value);
        } catch (BadHeaderException e) {
            return refuse(
                    r,
                    ErrorClass.UNDECODABLE,
                    "value is not Avro single-object encoding (no C3 01 marker); produce with EngramEvent.getEncoder()",
                    e,
                    null);
        } catch (MissingSchemaException e) {
            return refuse(
                    r,
                    ErrorClass.UNKNOWN_SCHEMA,
                    "schema fingerprint %s is not an EngramEvent schema this job reads"
                            .formatted(fingerprintHex(r.value)),
                    e,
                    null);
        } catch (Exception e) {
            // AvroRuntimeException, EOFException, limits exceeded, array bounds on truncated or garbage bodies
            return refuse(
                    r, ErrorClass.UNDECODABLE, "value does not decode as an EngramEvent: " + e.getMessage(), e, null);
        }
        event.setSource(new SourceCoordinates(r.topic, r.partition, r.offset));
        event.setPart(null); // set by ContentParts only
        Optional<String> badUtf8 = invalidUtf8Field(r, event);
        if (badUtf8.isPresent()) {
            return refuse(
                    r, ErrorClass.INVALID_UTF8, "field '%s' is not valid UTF-8".formatted(badUtf8.get()), null, null);
        }
        String session = event.getSessionId();
        if (session.isBlank()) {
            return refuse(
                    r, ErrorClass.MISSING_SESSION, "event " + event.getEventId() + " has no session_id", null, event);
        }
        String badId = invalidId("session_id", session);
        if (badId != null) {
            return refuse(r, ErrorClass.INVALID_EVENT, badId, null, event);
        }
        if (r.key == null) {
            return refuse(
                    r,
                    ErrorClass.KEY_MISMATCH,
                    "record has no key; the key must be the session id '%s' in UTF-8".formatted(session),
                    null,
                    event);
        }
        String key = strictUtf8(r.key);
        if (!session.equals(key)) {
            return refuse(
                    r,
                    ErrorClass.KEY_MISMATCH,
                    "record key %s is not the session id '%s'"
                            .formatted(key == null ? "(not UTF-8)" : "'" + key + "'", session),
                    null,
                    event);
        }
        String invalid = invalidContent(event);
        if (invalid != null) {
            ErrorClass cls = invalid.startsWith("unsupported") ? ErrorClass.UNSUPPORTED : ErrorClass.INVALID_EVENT;
            return refuse(r, cls, invalid, null, event);
        }
        return new Outcome(event, null);
    }

    /** Longest session, event or query id accepted, in characters. */
    public static final int MAX_ID_CHARS = DeadLetters.MAX_ID_CHARS;

    /**
     * What is wrong with an id, or null: ids travel in keys, state, logs, URLs and dead letters, so they are bounded
     * ({@value #MAX_ID_CHARS} characters) and free of control characters.
     */
    static String invalidId(String field, String id) {
        if (id.length() > MAX_ID_CHARS) {
            return "%s is %d characters long; at most %d are accepted".formatted(field, id.length(), MAX_ID_CHARS);
        }
        for (int i = 0; i < id.length(); i++) {
            if (Character.isISOControl(id.charAt(i))) {
                return "%s contains the control character U+%04X at index %d; ids must be printable"
                        .formatted(field, (int) id.charAt(i), i);
            }
        }
        return null;
    }

    /** A description of what is wrong with the event's fields, or null if nothing is. */
    private static String invalidContent(EngramEvent event) {
        if (event.getEventId().isBlank()) {
            return "event of session " + event.getSessionId() + " has a blank event_id";
        }
        String badId = invalidId("event_id", event.getEventId());
        if (badId == null && event.getPayload() instanceof QueryEvent q) {
            badId = invalidId("query_id", q.getQueryId());
        }
        if (badId != null) {
            return badId;
        }
        return switch (event.getPayload()) {
            case ContentEvent c
            when c.getKind() == ContentKind.UNKNOWN -> "unsupported content kind (written by a newer schema?)";
            case ContentEvent c when c.getText().isEmpty() -> "content event " + event.getEventId() + " has empty text";
            case QueryEvent q
            when q.getQueryId().isBlank() -> "query event " + event.getEventId() + " has a blank query_id";
            case QueryEvent q when q.getQuestion().isBlank() -> "query " + q.getQueryId() + " has a blank question";
            case QueryEvent q
            when q.getOptions().getMaxNewTokens() <= 0 ->
                "query %s asks for max_new_tokens=%d; must be > 0"
                        .formatted(q.getQueryId(), q.getOptions().getMaxNewTokens());
            case ControlEvent c
            when c.getAction() == ControlAction.UNKNOWN -> "unsupported control action (written by a newer schema?)";
            default -> null;
        };
    }

    private Optional<String> invalidUtf8Field(RawRecord r, EngramEvent event) {
        if (!hasReplacementChar(event)) {
            return Optional.empty(); // fast path: Avro replaced nothing
        }
        try {
            Schema writer = writers.get(fingerprint(r.value)); // known: the record decoded
            return utf8.computeIfAbsent(fingerprint(r.value), fp -> new Utf8Validator(writer))
                    .firstInvalidField(r.value, HEADER_BYTES, r.value.length - HEADER_BYTES);
        } catch (Exception e) {
            return Optional.of("? (" + e.getMessage() + ")");
        }
    }

    /** Whether any string inside the record (nested records and arrays included) contains U+FFFD. */
    private static boolean hasReplacementChar(Object datum) {
        return switch (datum) {
            case CharSequence s -> s.toString().indexOf('\uFFFD') >= 0;
            case IndexedRecord rec -> {
                for (int i = 0; i < rec.getSchema().getFields().size(); i++) {
                    if (hasReplacementChar(rec.get(i))) {
                        yield true;
                    }
                }
                yield false;
            }
            case Iterable<?> items -> {
                for (Object item : items) {
                    if (hasReplacementChar(item)) {
                        yield true;
                    }
                }
                yield false;
            }
            case null, default -> false;
        };
    }

    private static String strictUtf8(byte[] bytes) {
        try {
            CharBuffer chars = StandardCharsets.UTF_8
                    .newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes));
            return chars.toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    private static String fingerprintHex(byte[] value) {
        if (value.length < HEADER_BYTES) {
            return "(truncated)";
        }
        return "%016x".formatted(fingerprint(value));
    }

    /** The writer-schema fingerprint of a single-object message of at least {@link #HEADER_BYTES} bytes. */
    private static long fingerprint(byte[] value) {
        return ByteBuffer.wrap(value, 2, 8)
                .order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .getLong();
    }

    private static Outcome refuse(RawRecord r, ErrorClass cls, String reason, Throwable cause, EngramEvent event) {
        return new Outcome(
                null,
                DeadLetters.forRecord(
                        r,
                        cls,
                        reason,
                        cause,
                        event == null ? null : event.getSessionId(),
                        event == null ? null : event.getEventId()));
    }
}
