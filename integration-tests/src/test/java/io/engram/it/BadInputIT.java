package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.operators.DeadLetters;
import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SourceCoordinates;
import io.engram.schemas.Summary;
import io.engram.topology.EngramJob;
import io.engram.topology.EngramSinks;
import io.engram.topology.EngramSources;
import io.engram.topology.KafkaOptions;
import io.engram.topology.SessionOutputs;
import io.engram.topology.SessionStage;
import io.engram.topology.options.ResolvedOptions;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Bad input through the real job: Kafka source, decoder, keyBy, a session stage, exactly-once Kafka sinks, RocksDB
 * state backend with checkpoints, on a MiniCluster with restarts disabled (so a single failure would end the job).
 * Every bad record must give exactly one dead letter with the right class and coordinates; valid events must reach
 * the session stage and not be dead-lettered; the job must still be RUNNING at the end.
 */
class BadInputIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    /** event id -> source coordinates, as seen by the recording stage. Test code only: the MiniCluster shares our JVM. */
    static final Map<String, SourceCoordinates> SEEN = new ConcurrentHashMap<>();

    static final OutputTag<Summary> SUMMARIES = new OutputTag<>("it-summaries", new AvroTypeInfo<>(Summary.class));
    static final OutputTag<Attribution> ATTRIBUTIONS =
            new OutputTag<>("it-attributions", new AvroTypeInfo<>(Attribution.class));

    /** Records what reaches the session stage and emits nothing. Not a session operator: test wiring only. */
    static final class Recorder extends KeyedProcessFunction<String, EngramEvent, Answer> {
        @Override
        public void processElement(EngramEvent e, Context ctx, Collector<Answer> out) {
            assertThat(ctx.getCurrentKey()).isEqualTo(e.getSessionId());
            SEEN.put(e.getEventId(), e.getSource());
        }
    }

    static final SessionStage RECORDING_STAGE = events -> {
        SingleOutputStreamOperator<Answer> answers = events.process(new Recorder(), new AvroTypeInfo<>(Answer.class))
                .name("it recorder")
                .uid("engram-it-recorder");
        return new SessionOutputs(
                answers,
                answers.getSideOutput(SUMMARIES),
                answers.getSideOutput(ATTRIBUTIONS),
                answers.getSideOutput(DeadLetters.TAG));
    };

    static ResolvedOptions options;
    static JobClient job;
    static Path checkpoints;

    @BeforeAll
    static void startJob() throws Exception {
        EngramSchemas.trustEngramClasses();
        checkpoints = KAFKA.newDir("checkpoints");
        options = KAFKA.newOptions(
                2,
                Map.of(
                        "engram.job.checkpoint-interval", "300ms",
                        "engram.job.checkpoint-dir", checkpoints.toUri().toString(),
                        "engram.job.parallelism", "2",
                        "engram.decoder.max-event-bytes", "2048"));
        Configuration conf = EngramJob.flinkConfiguration(options);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(2, conf);
        EngramJob.build(env, EngramSources.kafka(options), EngramSinks.kafka(options), options, RECORDING_STAGE);
        job = env.executeAsync("bad-input-it");
    }

    @AfterAll
    static void stopJob() throws Exception {
        if (job != null) {
            job.cancel().get(30, TimeUnit.SECONDS);
        }
    }

    static byte[] encode(EngramEvent e) throws Exception {
        return AnswerWorkload.bytes(e);
    }

    static EngramEvent content(String session, String eventId, String text) {
        return EngramEvent.newBuilder()
                .setSessionId(session)
                .setEventId(eventId)
                .setTimestampMs(1L)
                .setPayload(ContentEvent.newBuilder()
                        .setKind(ContentKind.DOCUMENT_CHUNK)
                        .setText(text)
                        .build())
                .build();
    }

    static byte[] corruptUtf8(byte[] bytes, String marker) {
        byte[] m = marker.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i + m.length <= bytes.length; i++) {
            if (Arrays.equals(bytes, i, i + m.length, m, 0, m.length)) {
                byte[] out = bytes.clone();
                out[i] = (byte) 0xC3; // a lead byte followed by ASCII: malformed
                return out;
            }
        }
        throw new IllegalArgumentException("marker not found: " + marker);
    }

    @Test
    void everyBadRecordGivesOneDeadLetterAndTheJobKeepsRunning() throws Exception {
        String input = options.get(KafkaOptions.INPUT_TOPIC);
        Map<String, ErrorClass> expected = new LinkedHashMap<>(); // "partition@offset" -> class
        SourceCoordinates valid1;
        SourceCoordinates valid2;
        try (KafkaProducer<byte[], byte[]> producer = KAFKA.producer()) {
            valid1 = send(producer, input, "s1", encode(content("s1", "v1", "The vault code is 7481.")), null, null);
            send(
                    producer,
                    input,
                    "s1",
                    "\u0000\u0001 definitely not avro".getBytes(StandardCharsets.UTF_8),
                    expected,
                    ErrorClass.UNDECODABLE);
            send(
                    producer,
                    input,
                    "s1",
                    SourceCoordinates.getEncoder()
                            .encode(new SourceCoordinates("x", 0, 0L))
                            .array(),
                    expected,
                    ErrorClass.UNKNOWN_SCHEMA);
            send(
                    producer,
                    input,
                    "",
                    encode(content("", "e-blank", "no session")),
                    expected,
                    ErrorClass.MISSING_SESSION);
            send(
                    producer,
                    input,
                    "s2",
                    encode(content("s1", "e-key", "key says s2")),
                    expected,
                    ErrorClass.KEY_MISMATCH);
            send(
                    producer,
                    input,
                    "s1",
                    corruptUtf8(encode(content("s1", "e-utf8", "broken-here")), "broken"),
                    expected,
                    ErrorClass.INVALID_UTF8);
            send(
                    producer,
                    input,
                    "s1",
                    encode(content("s1", "e-big", "x".repeat(3000))),
                    expected,
                    ErrorClass.TOO_LARGE);
            // ~900 KB: a 200 KB session id as key and in a 700 KB query; its dead letter keeps 1 KiB of key and 256 KiB
            // of value (with the whole lengths and a hash), not ~900 KB
            String hugeSession = "h".repeat(200_000);
            send(
                    producer,
                    input,
                    hugeSession,
                    encode(EngramEvent.newBuilder()
                            .setSessionId(hugeSession)
                            .setEventId("e-huge")
                            .setTimestampMs(3L)
                            .setPayload(new QueryEvent(
                                    "q-huge",
                                    "y".repeat(480_000),
                                    GenerationOptions.newBuilder().build()))
                            .build()),
                    expected,
                    ErrorClass.TOO_LARGE);
            String longSession = "l".repeat(300);
            send(
                    producer,
                    input,
                    longSession,
                    encode(content(longSession, "e-long-id", "an id of 300 characters")),
                    expected,
                    ErrorClass.INVALID_EVENT);
        }
        // a value that decompresses to 4 MB: small on the wire (gzip), whole again when the job reads it. Copied whole,
        // its dead letter was over the sink's 1 MiB request limit: the task failed and replayed the record forever.
        try (KafkaProducer<byte[], byte[]> gzip = new KafkaProducer<>(
                Map.of(
                        org.apache.kafka.clients.producer.ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                        KAFKA.bootstrapServers(),
                        org.apache.kafka.clients.producer.ProducerConfig.COMPRESSION_TYPE_CONFIG,
                        "gzip",
                        org.apache.kafka.clients.producer.ProducerConfig.MAX_REQUEST_SIZE_CONFIG,
                        8 << 20),
                new org.apache.kafka.common.serialization.ByteArraySerializer(),
                new org.apache.kafka.common.serialization.ByteArraySerializer())) {
            send(
                    gzip,
                    input,
                    "s1",
                    encode(content("s1", "e-zip", "z".repeat(4 << 20))),
                    expected,
                    ErrorClass.TOO_LARGE);
        }
        try (KafkaProducer<byte[], byte[]> producer = KAFKA.producer()) {
            valid2 = send(
                    producer,
                    input,
                    "s2",
                    encode(EngramEvent.newBuilder()
                            .setSessionId("s2")
                            .setEventId("v2")
                            .setTimestampMs(2L)
                            .setPayload(new QueryEvent(
                                    "q1",
                                    "What is the code?",
                                    GenerationOptions.newBuilder().build()))
                            .build()),
                    null,
                    null);
        }

        List<DeadLetter> letters;
        try (KafkaConsumer<byte[], byte[]> dlq = KAFKA.readCommitted(options.get(KafkaOptions.DEAD_LETTER_TOPIC))) {
            List<ConsumerRecord<byte[], byte[]>> records =
                    KafkaBroker.pollUntil(dlq, r -> r.size() >= expected.size(), Duration.ofSeconds(60));
            assertThat(records).as("dead letters within 60 s").hasSize(expected.size());
            // Extra output must fail too: a last bad record marks the end; nothing may come before it beyond the above.
            try (KafkaProducer<byte[], byte[]> producer = KAFKA.producer()) {
                send(producer, input, "s9", new byte[] {1, 2, 3}, expected, ErrorClass.UNDECODABLE);
            }
            records.addAll(KafkaBroker.pollUntil(dlq, r -> r.size() >= 1, Duration.ofSeconds(60)));
            letters = records.stream().map(r -> decode(r.value())).toList();
        }

        Map<String, ErrorClass> actual = new LinkedHashMap<>();
        for (DeadLetter l : letters) {
            SourceCoordinates src = l.getSource();
            assertThat(src.getTopic()).isEqualTo(input);
            String where = src.getPartition() + "@" + src.getOffset();
            assertThat(actual.put(where, l.getErrorClass()))
                    .as("one dead letter per record, %s", where)
                    .isNull();
            assertThat(l.getReason()).startsWith(input + "-" + where + ": ");
            assertThat(l.getValue()).as("raw bytes kept").isNotNull();
            assertThat(l.getValueLength())
                    .as("whole length kept")
                    .isGreaterThanOrEqualTo(l.getValue().remaining());
            assertThat(DeadLetter.getEncoder().encode(l).remaining())
                    .as("bounded dead letter")
                    .isLessThan(300 * 1024);
        }
        assertThat(actual).isEqualTo(expected);
        assertThat(letters)
                .filteredOn(l -> l.getErrorClass() == ErrorClass.KEY_MISMATCH)
                .singleElement()
                .satisfies(l -> assertThat(l.getReason()).contains("'s2'").contains("'s1'"));

        assertThat(KafkaBroker.await(() -> SEEN.containsKey("v1") && SEEN.containsKey("v2"), Duration.ofSeconds(30)))
                .as("valid events reach the session stage")
                .isTrue();
        assertThat(SEEN).containsExactlyInAnyOrderEntriesOf(Map.of("v1", valid1, "v2", valid2));

        assertThat(job.getJobStatus().get(10, TimeUnit.SECONDS))
                .as("restarts are off: any failure ends the job")
                .isEqualTo(JobStatus.RUNNING);
        try (Stream<Path> files = Files.walk(checkpoints)) {
            assertThat(files.filter(p -> p.getFileName().toString().equals("_metadata")))
                    .as("a completed checkpoint under %s", checkpoints)
                    .isNotEmpty();
        }
    }

    /** Sends one record; if {@code errorClass} is given, records it as expected at the record's coordinates. */
    static SourceCoordinates send(
            KafkaProducer<byte[], byte[]> producer,
            String topic,
            String key,
            byte[] value,
            Map<String, ErrorClass> expected,
            ErrorClass errorClass)
            throws Exception {
        RecordMetadata m = producer.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8), value))
                .get(10, TimeUnit.SECONDS);
        if (errorClass != null) {
            expected.put(m.partition() + "@" + m.offset(), errorClass);
        }
        return new SourceCoordinates(topic, m.partition(), m.offset());
    }

    static DeadLetter decode(byte[] bytes) {
        try {
            return DeadLetter.getDecoder().decode(bytes);
        } catch (Exception e) {
            throw new AssertionError("dead-letter topic holds a record that is not a DeadLetter", e);
        }
    }
}
