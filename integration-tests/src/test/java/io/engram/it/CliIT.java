package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.QueryEvent;
import io.engram.topology.SessionStageFactory;
import io.engram.topology.cli.CliContext;
import io.engram.topology.cli.EngramCli;
import io.engram.topology.cli.ExitCode;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** The engram CLI's client commands against a real broker, with injected stdin/stdout/stderr. */
class CliIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    static String input;
    static String answers;
    static String summaries;

    StringWriter out;
    StringWriter err;
    String session;

    @BeforeAll
    static void topics() throws Exception {
        EngramSchemas.trustEngramClasses();
        input = KAFKA.newTopic("in", 2);
        answers = KAFKA.newTopic("answers", 2);
        summaries = KAFKA.newTopic("summaries", 1);
    }

    @BeforeEach
    void fresh() {
        out = new StringWriter();
        err = new StringWriter();
        session = "s-" + UUID.randomUUID();
    }

    int cli(InputStream stdin, String... args) {
        CliContext ctx = new CliContext(
                new PrintWriter(out, true),
                new PrintWriter(err, true),
                java.util.Map.of(),
                stdin,
                false,
                SessionStageFactory.none(),
                new CompletableFuture<>());
        List<String> all = new ArrayList<>(List.of(
                "--set",
                "engram.kafka.bootstrap-servers=" + KAFKA.bootstrapServers(),
                "--set",
                "engram.kafka.topic.input=" + input,
                "--set",
                "engram.kafka.topic.answers=" + answers,
                "--set",
                "engram.kafka.topic.summaries=" + summaries));
        all.addAll(List.of(args));
        return new EngramCli(ctx).execute(all.toArray(String[]::new));
    }

    /** The events of this test's session on the input topic (read_committed), in order. */
    List<ConsumerRecord<byte[], byte[]>> sessionRecords(int expected) {
        try (KafkaConsumer<byte[], byte[]> c = KAFKA.readCommitted(input)) {
            return KafkaBroker.pollUntil(c, r -> ofSession(r).size() >= expected, Duration.ofSeconds(20)).stream()
                    .filter(r -> new String(r.key(), StandardCharsets.UTF_8).equals(session))
                    .toList();
        }
    }

    private List<ConsumerRecord<byte[], byte[]>> ofSession(List<ConsumerRecord<byte[], byte[]>> records) {
        return records.stream()
                .filter(r -> new String(r.key(), StandardCharsets.UTF_8).equals(session))
                .toList();
    }

    static EngramEvent decode(ConsumerRecord<byte[], byte[]> r) {
        try {
            return EngramEvent.getDecoder().decode(r.value());
        } catch (Exception e) {
            throw new AssertionError("not an EngramEvent at " + r.topic() + "-" + r.partition() + "@" + r.offset(), e);
        }
    }

    @Test
    void produceCutsAFileIntoParagraphChunks(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("notes.txt");
        Files.writeString(file, "Alpha one.\nAlpha two.\n\nBeta.\n\n\nGamma gamma gamma gamma.\n");
        int code = cli(
                InputStream.nullInputStream(), "produce", "-s", session, "--max-chunk-chars", "24", file.toString());

        assertThat(code).as(err.toString()).isZero();
        assertThat(out.toString())
                .isEqualTo("produced 3 document-chunk events to " + input + " for session " + session + "\n");
        List<EngramEvent> events = sessionRecords(3).stream().map(CliIT::decode).toList();
        assertThat(events).hasSize(3);
        assertThat(events)
                .extracting(e -> ((ContentEvent) e.getPayload()).getText())
                .containsExactly("Alpha one.\nAlpha two.", "Beta.", "Gamma gamma gamma gamma.");
        assertThat(events)
                .extracting(e -> ((ContentEvent) e.getPayload()).getChunkIndex())
                .containsExactly(0, 1, 2);
        assertThat(events).allSatisfy(e -> {
            assertThat(e.getSessionId()).isEqualTo(session);
            assertThat(((ContentEvent) e.getPayload()).getKind()).isEqualTo(ContentKind.DOCUMENT_CHUNK);
            assertThat(((ContentEvent) e.getPayload()).getDocumentId()).isEqualTo("notes.txt");
        });
        assertThat(events).extracting(EngramEvent::getEventId).doesNotHaveDuplicates();
    }

    @Test
    void produceReadsStdin() throws Exception {
        byte[] text = "From stdin, paragraph one.\n\nParagraph two.\n".getBytes(StandardCharsets.UTF_8);
        assertThat(cli(new ByteArrayInputStream(text), "produce", "--session", session, "-"))
                .as(err.toString())
                .isZero();
        List<EngramEvent> events = sessionRecords(1).stream().map(CliIT::decode).toList();
        assertThat(events).singleElement().satisfies(e -> {
            ContentEvent c = (ContentEvent) e.getPayload();
            assertThat(c.getText()).isEqualTo("From stdin, paragraph one.\n\nParagraph two.");
            assertThat(c.getDocumentId()).isEqualTo("stdin");
        });
    }

    @Test
    void produceSendsJsonlDialogueTurns(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("chat.jsonl");
        Files.writeString(file, """
                {"role": "user", "speaker": "Ada", "text": "Remember: the vault code is 7481."}

                {"role": "assistant", "speaker": "Engram", "text": "Noted."}
                {"role": "user", "text": "Thanks ✓"}
                """);
        assertThat(cli(InputStream.nullInputStream(), "produce", "-s", session, file.toString()))
                .as(err.toString())
                .isZero();
        List<ContentEvent> turns = sessionRecords(3).stream()
                .map(r -> (ContentEvent) decode(r).getPayload())
                .toList();
        assertThat(turns).extracting(ContentEvent::getKind).containsOnly(ContentKind.DIALOGUE_TURN);
        assertThat(turns).extracting(ContentEvent::getRole).containsExactly("user", "assistant", "user");
        assertThat(turns).extracting(ContentEvent::getSpeaker).containsExactly("Ada", "Engram", null);
        assertThat(turns)
                .extracting(ContentEvent::getText)
                .containsExactly("Remember: the vault code is 7481.", "Noted.", "Thanks ✓");
    }

    @Test
    void aBadJsonlLineIsInvalidInputAndNamesTheLine(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("bad.jsonl");
        Files.writeString(file, "{\"role\": \"user\", \"text\": \"ok\"}\n{\"role\": \"user\"}\n");
        assertThat(cli(InputStream.nullInputStream(), "produce", "-s", session, file.toString()))
                .isEqualTo(ExitCode.INVALID_INPUT.code());
        assertThat(err.toString()).contains("bad.jsonl line 2").contains("1 events before it were produced");
        assertThat(out.toString()).isEmpty();
        assertThat(sessionRecords(1)).hasSize(1);
    }

    @Test
    void askOverKafkaPrintsTheAnswerWithCitations() throws Exception {
        // Stand-in for the job: answers the first query of this session it sees on the input topic.
        CompletableFuture<Void> responder = CompletableFuture.runAsync(() -> {
            try (KafkaConsumer<byte[], byte[]> c = KAFKA.readCommitted(input);
                    KafkaProducer<byte[], byte[]> p = KAFKA.producer()) {
                List<ConsumerRecord<byte[], byte[]>> seen = KafkaBroker.pollUntil(
                        c,
                        r -> ofSession(r).stream().anyMatch(x -> decode(x).getPayload() instanceof QueryEvent),
                        Duration.ofSeconds(30));
                QueryEvent q = ofSession(seen).stream()
                        .map(CliIT::decode)
                        .map(EngramEvent::getPayload)
                        .filter(QueryEvent.class::isInstance)
                        .map(QueryEvent.class::cast)
                        .findFirst()
                        .orElseThrow();
                assertThat(q.getQuestion()).isEqualTo("what is the vault code?");
                assertThat(q.getOptions().getMaxNewTokens()).isEqualTo(32);
                p.send(new ProducerRecord<>(
                                answers,
                                session.getBytes(StandardCharsets.UTF_8),
                                Outputs.bytes(Outputs.answer(session, q.getQueryId(), "It is 7481 [1]."))))
                        .get(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        int code = cli(
                InputStream.nullInputStream(),
                "ask",
                "-s",
                session,
                "--via",
                "kafka",
                "--timeout",
                "30s",
                "--max-new-tokens",
                "32",
                "what",
                "is",
                "the",
                "vault",
                "code?");
        responder.get(30, TimeUnit.SECONDS);
        assertThat(code).as(err.toString()).isZero();
        assertThat(out.toString())
                .isEqualTo("It is 7481 [1].\n"
                        + "[1] in-1@17 event e-17 chars 4-27 (score 0.910): \"The vault code is 7481.\"\n");
    }

    @Test
    void askTimesOutAsUnavailable() {
        int code = cli(InputStream.nullInputStream(), "ask", "-s", session, "--via", "kafka", "--timeout", "1s", "hi?");
        assertThat(code).isEqualTo(ExitCode.UNAVAILABLE.code());
        assertThat(err.toString()).contains("no answer to query").contains("within 1s");
        assertThat(out.toString()).isEmpty();
    }

    @Test
    void tailPrintsAnswersAndSummaries() throws Exception {
        String answers = KAFKA.newTopic("tail-answers", 1);
        String summaries = KAFKA.newTopic("tail-summaries", 1);
        try (KafkaProducer<byte[], byte[]> p = KAFKA.producer()) {
            p.send(new ProducerRecord<>(
                            summaries,
                            session.getBytes(StandardCharsets.UTF_8),
                            Outputs.bytes(Outputs.summary(session, 4, "Ada told us\nthe code."))))
                    .get(10, TimeUnit.SECONDS);
            p.send(new ProducerRecord<>(
                            answers,
                            session.getBytes(StandardCharsets.UTF_8),
                            Outputs.bytes(Outputs.answer(session, "q-tail", "Tail answer."))))
                    .get(10, TimeUnit.SECONDS);
        }
        int code = cli(
                InputStream.nullInputStream(),
                "--set",
                "engram.kafka.topic.answers=" + answers,
                "--set",
                "engram.kafka.topic.summaries=" + summaries,
                "tail",
                "--from-beginning",
                "--max-records",
                "2",
                "--timeout",
                "20s");
        assertThat(code).as(err.toString()).isZero();
        assertThat(out.toString().lines())
                .hasSize(2)
                .contains(
                        "summary session=" + session + " EPISODE events in-0@0..in-0@4: Ada told us the code.",
                        "answer session=" + session + " query=q-tail tokens=9: Tail answer.");
    }

    @Test
    void explainPrintsThePreciseAttributionOfAQuery() throws Exception {
        String attributions = KAFKA.newTopic("explain-attributions", 2);
        io.engram.schemas.SourceSegment seg = io.engram.schemas.SourceSegment.newBuilder()
                .setSource(new io.engram.schemas.SourceCoordinates("in", 0, 7L))
                .setEventId("ev-7")
                .setCharStart(3)
                .setCharEnd(20)
                .setExcerpt("the vault code is 4471")
                .setScore(2.5)
                .setRank(1)
                .build();
        try (KafkaProducer<byte[], byte[]> p = KAFKA.producer()) {
            for (io.engram.schemas.AttributionMethod m :
                    List.of(io.engram.schemas.AttributionMethod.FAST, io.engram.schemas.AttributionMethod.PRECISE)) {
                p.send(new ProducerRecord<>(
                                attributions,
                                session.getBytes(StandardCharsets.UTF_8),
                                Outputs.bytes(io.engram.schemas.Attribution.newBuilder()
                                        .setSessionId(session)
                                        .setQueryId("q-explain")
                                        .setMethod(m)
                                        .setSegments(List.of(io.engram.schemas.SourceSegment.newBuilder(seg)
                                                .setScore(m == io.engram.schemas.AttributionMethod.FAST ? 0.4 : 2.5)
                                                .build()))
                                        .setElapsedMs(12)
                                        .setCreatedAtMs(1000L)
                                        .build())))
                        .get(10, TimeUnit.SECONDS);
            }
        }
        int code = cli(
                InputStream.nullInputStream(),
                "--set",
                "engram.kafka.topic.attributions=" + attributions,
                "explain",
                "-s",
                session,
                "q-explain",
                "--timeout",
                "20s");
        assertThat(code).as(err.toString()).isZero();
        assertThat(out.toString().lines())
                .containsExactly(
                        "PRECISE attribution of query q-explain in session " + session + " (12 ms):",
                        "[1] in-0@7 event ev-7 chars 3-20 (score 2.500): \"the vault code is 4471\"");
        out.getBuffer().setLength(0);
        int missing = cli(
                InputStream.nullInputStream(),
                "--set",
                "engram.kafka.topic.attributions=" + attributions,
                "explain",
                "-s",
                session,
                "q-other",
                "--timeout",
                "2s");
        assertThat(missing).isEqualTo(3);
        int otherSession = cli(
                InputStream.nullInputStream(),
                "--set",
                "engram.kafka.topic.attributions=" + attributions,
                "explain",
                "-s",
                session + "-other",
                "q-explain",
                "--timeout",
                "2s");
        assertThat(otherSession)
                .as("another session never sees this session's attribution")
                .isEqualTo(3);
        assertThat(missing).isEqualTo(3);
        assertThat(out.toString()).isEmpty();
    }
}
