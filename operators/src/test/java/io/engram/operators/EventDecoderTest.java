package io.engram.operators;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.ControlAction;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SourceCoordinates;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.specific.SpecificDatumWriter;
import org.apache.flink.streaming.api.operators.ProcessOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class EventDecoderTest {

    private static final String TOPIC = "in";
    private OneInputStreamOperatorTestHarness<RawRecord, EngramEvent> harness;
    private long offset;

    @BeforeEach
    void open() throws Exception {
        EngramSchemas.trustEngramClasses();
        harness = new OneInputStreamOperatorTestHarness<>(
                new ProcessOperator<>(new EventDecoder(new DecoderSettings(1024))));
        harness.open();
    }

    @AfterEach
    void close() throws Exception {
        harness.close();
    }

    static EngramEvent content(String session, String text) {
        return EngramEvent.newBuilder()
                .setSessionId(session)
                .setEventId("e-" + text.length())
                .setTimestampMs(1L)
                .setPayload(ContentEvent.newBuilder()
                        .setKind(ContentKind.DOCUMENT_CHUNK)
                        .setText(text)
                        .setDocumentId("doc")
                        .setChunkIndex(0)
                        .build())
                .build();
    }

    static byte[] encode(EngramEvent e) throws Exception {
        ByteBuffer b = EngramEvent.getEncoder().encode(e);
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /** Replaces the UTF-8 bytes of {@code marker} in {@code bytes} by as many invalid bytes (lengths stay right). */
    static byte[] corruptUtf8(byte[] bytes, String marker) {
        byte[] m = marker.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i + m.length <= bytes.length; i++) {
            if (Arrays.equals(bytes, i, i + m.length, m, 0, m.length)) {
                byte[] out = bytes.clone();
                Arrays.fill(out, i, i + m.length, (byte) 0xFF);
                return out;
            }
        }
        throw new IllegalArgumentException("marker not found: " + marker);
    }

    private RawRecord record(String key, byte[] value) {
        return new RawRecord(key == null ? null : key.getBytes(StandardCharsets.UTF_8), value, TOPIC, 3, offset++, 99L);
    }

    private void feed(RawRecord r) throws Exception {
        harness.processElement(new StreamRecord<>(r, r.timestampMs));
    }

    private List<DeadLetter> deadLetters() {
        var queue = harness.getSideOutput(DeadLetters.TAG);
        return queue == null
                ? List.of()
                : queue.stream().map(StreamRecord::getValue).toList();
    }

    @Test
    void validEventsPassWithTheirCoordinates() throws Exception {
        feed(record("s1", encode(content("s1", "hello wörld \uFFFD is a real replacement char"))));
        EngramEvent query = EngramEvent.newBuilder()
                .setSessionId("s1")
                .setEventId("q")
                .setTimestampMs(2L)
                .setPayload(new QueryEvent(
                        "q-1", "why?", GenerationOptions.newBuilder().build()))
                .setSource(new SourceCoordinates("forged", 9, 9L))
                .build();
        feed(record("s1", encode(query)));
        feed(record(
                "s1",
                encode(EngramEvent.newBuilder(query)
                        .setEventId("c")
                        .setPayload(new ControlEvent(ControlAction.REQUEST_SUMMARY))
                        .build())));

        List<EngramEvent> out = harness.extractOutputValues();
        assertThat(out).hasSize(3);
        assertThat(out)
                .extracting(EngramEvent::getSource)
                .containsExactly(
                        new SourceCoordinates(TOPIC, 3, 0L),
                        new SourceCoordinates(TOPIC, 3, 1L),
                        new SourceCoordinates(TOPIC, 3, 2L));
        assertThat(((ContentEvent) out.getFirst().getPayload()).getText()).contains("wörld");
        assertThat(deadLetters()).isEmpty();
    }

    @Test
    void everyBadRecordBecomesExactlyOneDeadLetter() throws Exception {
        byte[] good = encode(content("s1", "fine text"));
        feed(record("s1", null)); // 0 tombstone
        feed(record("s1", "not avro at all".getBytes(StandardCharsets.UTF_8))); // 1
        feed(record("s1", Arrays.copyOf(good, good.length - 4))); // 2 truncated body
        byte[] otherSchema = SourceCoordinates.getEncoder()
                .encode(new SourceCoordinates("t", 0, 0L))
                .array();
        feed(record("s1", otherSchema)); // 3
        feed(record(" ", encode(content(" ", "no session")))); // 4
        feed(record("s2", good)); // 5
        feed(record(null, good)); // 6
        feed(record("s1", corruptUtf8(good, "fine"))); // 7
        feed(record("s1", encode(content("s1", "x".repeat(2000))))); // 8
        feed(record(
                "s1",
                encode(EngramEvent.newBuilder(content("s1", "t"))
                        .setPayload(ContentEvent.newBuilder()
                                .setKind(ContentKind.UNKNOWN)
                                .setText("t")
                                .build())
                        .build()))); // 9
        feed(record(
                "s1",
                encode(EngramEvent.newBuilder(content("s1", "t"))
                        .setPayload(new QueryEvent(
                                "q",
                                "why",
                                GenerationOptions.newBuilder()
                                        .setMaxNewTokens(0)
                                        .build()))
                        .build()))); // 10

        assertThat(harness.extractOutputValues()).isEmpty();
        List<DeadLetter> letters = deadLetters();
        assertThat(letters)
                .extracting(DeadLetter::getErrorClass)
                .containsExactly(
                        ErrorClass.UNDECODABLE,
                        ErrorClass.UNDECODABLE,
                        ErrorClass.UNDECODABLE,
                        ErrorClass.UNKNOWN_SCHEMA,
                        ErrorClass.MISSING_SESSION,
                        ErrorClass.KEY_MISMATCH,
                        ErrorClass.KEY_MISMATCH,
                        ErrorClass.INVALID_UTF8,
                        ErrorClass.TOO_LARGE,
                        ErrorClass.UNSUPPORTED,
                        ErrorClass.INVALID_EVENT);
        for (int i = 0; i < letters.size(); i++) {
            DeadLetter l = letters.get(i);
            assertThat(l.getSource()).isEqualTo(new SourceCoordinates(TOPIC, 3, (long) i));
            assertThat(l.getReason()).startsWith(TOPIC + "-3@" + i + ": ");
            assertThat(l.getTimestampMs()).isEqualTo(99L);
        }
        assertThat(letters.get(3).getReason()).contains("fingerprint");
        assertThat(letters.get(5).getReason()).contains("'s2'").contains("'s1'");
        assertThat(letters.get(5).getSessionId()).isEqualTo("s1");
        assertThat(letters.get(7).getReason()).contains("'payload.text'");
        assertThat(letters.get(8).getReason()).contains("over the limit of 1024 bytes");
        assertThat(letters.get(8).getValue().remaining()).isGreaterThan(1024); // the bytes are kept whole
        assertThat(letters.get(1).getException()).contains("BadHeaderException");
    }

    /** The event as a producer of a released version wrote it: its fields in that version's schema, fingerprint included. */
    static byte[] encodeAs(String version, EngramEvent e) throws Exception {
        Schema released = EngramSchemas.releasedSchemas(version)
                .get(EngramEvent.getClassSchema().getFullName());
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(body, null);
        new SpecificDatumWriter<EngramEvent>(EngramEvent.getClassSchema()).write(e, enc);
        enc.flush();
        GenericRecord old = new GenericDatumReader<GenericRecord>(EngramEvent.getClassSchema(), released)
                .read(null, DecoderFactory.get().binaryDecoder(body.toByteArray(), null));
        ByteBuffer b = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), released).encode(old);
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /** Upgrading Engram must not dead-letter input events written by producers of an earlier release. */
    @Test
    void eventsOfEveryReleasedSchemaAreDecoded() throws Exception {
        List<String> versions = EngramSchemas.releasedVersions();
        assertThat(versions).isNotEmpty();
        EngramEvent query = EngramEvent.newBuilder()
                .setSessionId("s1")
                .setEventId("q")
                .setTimestampMs(2L)
                .setPayload(new QueryEvent(
                        "q-1",
                        "why?",
                        GenerationOptions.newBuilder().setMaxNewTokens(8).build()))
                .build();
        for (String version : versions) {
            feed(record("s1", encodeAs(version, content("s1", "old text " + version))));
            feed(record("s1", encodeAs(version, query)));
        }
        assertThat(deadLetters()).isEmpty();
        List<EngramEvent> out = harness.extractOutputValues();
        assertThat(out).hasSize(2 * versions.size());
        for (int i = 0; i < versions.size(); i++) {
            assertThat(((ContentEvent) out.get(2 * i).getPayload()).getText()).isEqualTo("old text " + versions.get(i));
            assertThat(out.get(2 * i).getSource()).isEqualTo(new SourceCoordinates(TOPIC, 3, (long) 2 * i));
            assertThat(out.get(2 * i + 1).getPayload()).isEqualTo(query.getPayload());
        }

        // the slow-path UTF-8 check walks the bytes with the schema that wrote them
        feed(record("s1", corruptUtf8(encodeAs(versions.getFirst(), content("s1", "bad bytes here")), "bytes")));
        assertThat(deadLetters()).singleElement().satisfies(l -> {
            assertThat(l.getErrorClass()).isEqualTo(ErrorClass.INVALID_UTF8);
            assertThat(l.getReason()).contains("'payload.text'");
        });
    }

    @Test
    void forEventKeepsTheEventReplayable() throws Exception {
        EngramEvent e = content("s9", "q");
        e.setSource(new SourceCoordinates(TOPIC, 1, 5L));
        DeadLetter l = DeadLetters.forEvent(e, ErrorClass.UNKNOWN_SESSION, "no memory for session s9");
        assertThat(l.getReason()).isEqualTo("in-1@5: no memory for session s9");
        assertThat(EngramEvent.getDecoder().decode(l.getValue())).isEqualTo(e);
        assertThat(StandardCharsets.UTF_8.decode(l.getKey()).toString()).isEqualTo("s9");
    }

    /** Encoded size of a dead letter as the sink writes it. */
    static int encodedSize(DeadLetter l) throws Exception {
        return DeadLetter.getEncoder().encode(l).remaining();
    }

    @Test
    void deadLettersStayBoundedWhateverTheInput() throws Exception {
        // a 300 KB session id in a ~900 KB query: before the bound, its dead letter (key + value + id + reason) was
        // over
        // the sink's 1 MiB max.request.size, failed the task and was replayed forever
        String hugeSession = "s".repeat(300_000);
        byte[] value = encode(EngramEvent.newBuilder()
                .setSessionId(hugeSession)
                .setEventId("q1")
                .setTimestampMs(1L)
                .setPayload(new QueryEvent(
                        "q1",
                        "x".repeat(600_000),
                        GenerationOptions.newBuilder().build()))
                .build());
        RawRecord big = new RawRecord(hugeSession.getBytes(StandardCharsets.UTF_8), value, TOPIC, 0, 7L, 99L);
        DeadLetter l = DeadLetters.forRecord(
                big, ErrorClass.TOO_LARGE, "value is too large; session " + hugeSession, null, hugeSession, "q1");
        assertThat(encodedSize(l)).isLessThan(300 * 1024);
        assertThat(l.getKeyLength()).isEqualTo(300_000);
        assertThat(l.getKey().remaining()).isEqualTo(DeadLetters.MAX_KEY_BYTES);
        assertThat(l.getValueLength()).isEqualTo(value.length);
        assertThat(l.getValue().remaining()).isEqualTo(DeadLetters.MAX_VALUE_BYTES);
        assertThat(l.getValueSha256())
                .isEqualTo(java.util.HexFormat.of()
                        .formatHex(java.security.MessageDigest.getInstance("SHA-256")
                                .digest(value)));
        assertThat(l.getSessionId()).hasSize(DeadLetters.MAX_ID_CHARS).endsWith("...");
        assertThat(l.getReason())
                .hasSizeLessThanOrEqualTo(DeadLetters.MAX_TEXT_CHARS)
                .startsWith("in-0@7: value is too large");

        // the same through the decoder (limit 1024 bytes here): one bounded TOO_LARGE letter
        feed(big);
        assertThat(deadLetters()).singleElement().satisfies(d -> {
            assertThat(d.getErrorClass()).isEqualTo(ErrorClass.TOO_LARGE);
            assertThat(encodedSize(d)).isLessThan(300 * 1024);
        });
    }

    @Test
    void smallRecordsAreKeptWholeWithTheirLengthAndHash() throws Exception {
        byte[] garbage = {1, 2, 3};
        feed(record("s1", garbage));
        DeadLetter d = deadLetters().getFirst();
        assertThat(d.getValue()).isEqualTo(ByteBuffer.wrap(garbage));
        assertThat(d.getValueLength()).isEqualTo(3);
        assertThat(d.getKeyLength()).isEqualTo(2);
        assertThat(d.getValueSha256()).hasSize(64);
    }

    @Test
    void idsAreBoundedAndPrintable() throws Exception {
        harness.close();
        harness = new OneInputStreamOperatorTestHarness<>(
                new ProcessOperator<>(new EventDecoder(new DecoderSettings(1 << 20))));
        harness.open();
        String longId = "a".repeat(EventDecoder.MAX_ID_CHARS + 1);
        feed(record(longId, encode(content(longId, "text"))));
        feed(record("s\u0007x", encode(content("s\u0007x", "text"))));
        EngramEvent badEventId = content("s1", "text");
        badEventId.setEventId("e\n1");
        feed(record("s1", encode(badEventId)));
        EngramEvent badQuery = EngramEvent.newBuilder()
                .setSessionId("s1")
                .setEventId("e2")
                .setTimestampMs(1L)
                .setPayload(new QueryEvent(
                        "q".repeat(300), "What?", GenerationOptions.newBuilder().build()))
                .build();
        feed(record("s1", encode(badQuery)));
        String okId = "a".repeat(EventDecoder.MAX_ID_CHARS);
        feed(record(okId, encode(content(okId, "text"))));
        assertThat(deadLetters())
                .extracting(DeadLetter::getErrorClass)
                .containsExactly(
                        ErrorClass.INVALID_EVENT,
                        ErrorClass.INVALID_EVENT,
                        ErrorClass.INVALID_EVENT,
                        ErrorClass.INVALID_EVENT);
        assertThat(deadLetters())
                .extracting(DeadLetter::getReason)
                .satisfiesExactly(
                        r -> assertThat(r).contains("session_id is 257 characters long"),
                        r -> assertThat(r).contains("session_id contains the control character U+0007"),
                        r -> assertThat(r).contains("event_id contains the control character U+000A"),
                        r -> assertThat(r).contains("query_id is 300 characters long"));
        assertThat(harness.extractOutputValues())
                .singleElement()
                .satisfies(e -> assertThat(e.getSessionId()).isEqualTo(okId));
    }
}
