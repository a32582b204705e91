package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.ErrorClass;
import io.engram.topology.cli.CliContext;
import io.engram.topology.cli.EngramCli;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;

/**
 * {@code engram run} end to end with a test session stage: embedded broker, topics, Flink job, query app; a bad record
 * comes out on the dead-letter topic; stopping closes everything and exits 0.
 */
class EngramRunIT {

    private static final Pattern KAFKA = Pattern.compile("kafka: +(\\S+)");
    private static final Pattern QUERIES = Pattern.compile("queries: +(http://\\S+)");

    @Test
    void runStartsEverythingServesAndStops() throws Exception {
        EngramSchemas.trustEngramClasses();
        Path dataDir = Files.createTempDirectory("engram-run-");
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CompletableFuture<Void> stop = new CompletableFuture<>();
        CliContext ctx = new CliContext(
                new PrintWriter(out, true),
                new PrintWriter(err, true),
                Map.of(),
                InputStream.nullInputStream(),
                false,
                options -> BadInputIT.RECORDING_STAGE,
                stop);
        ExecutorService executor = Executors.newSingleThreadExecutor();
        try {
            Future<Integer> exit = executor.submit(() -> new EngramCli(ctx)
                    .execute(
                            "--set",
                            "engram.embedded.kafka-port=0",
                            "--set",
                            "engram.queries.http-port=0",
                            "--set",
                            "engram.data-dir=" + dataDir,
                            "--set",
                            "engram.job.checkpoint-interval=300ms",
                            "--set",
                            "engram.kafka.topic.partitions=2",
                            "run"));
            assertThat(KafkaBroker.await(
                            () -> QUERIES.matcher(out.toString()).find() || exit.isDone(), Duration.ofSeconds(60)))
                    .as("run prints where it listens; stderr: %s", err)
                    .isTrue();
            assertThat(exit.isDone()).as("run still running; stderr: %s", err).isFalse();

            Matcher k = KAFKA.matcher(out.toString());
            Matcher q = QUERIES.matcher(out.toString());
            assertThat(k.find() && q.find()).as(out.toString()).isTrue();
            String bootstrap = k.group(1);
            URI health = URI.create(q.group(1) + "/health");
            HttpClient http = HttpClient.newHttpClient();
            assertThat(KafkaBroker.await(() -> status(http, health) == 200, Duration.ofSeconds(60)))
                    .isTrue();

            try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(
                    Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap),
                    new ByteArraySerializer(),
                    new ByteArraySerializer())) {
                p.send(new ProducerRecord<>("engram-events", "s1".getBytes(StandardCharsets.UTF_8), new byte[] {42}))
                        .get(10, TimeUnit.SECONDS);
            }
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(
                    Map.of(
                            ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG,
                            bootstrap,
                            ConsumerConfig.ISOLATION_LEVEL_CONFIG,
                            "read_committed"),
                    new ByteArrayDeserializer(),
                    new ByteArrayDeserializer())) {
                List<TopicPartition> parts = List.of(
                        new TopicPartition("engram-dead-letters", 0), new TopicPartition("engram-dead-letters", 1));
                c.assign(parts);
                c.seekToBeginning(parts);
                List<ConsumerRecord<byte[], byte[]>> dlq =
                        KafkaBroker.pollUntil(c, r -> !r.isEmpty(), Duration.ofSeconds(60));
                assertThat(dlq)
                        .singleElement()
                        .satisfies(r -> assertThat(DeadLetter.getDecoder()
                                        .decode(r.value())
                                        .getErrorClass())
                                .isEqualTo(ErrorClass.UNDECODABLE));
            }

            stop.complete(null);
            assertThat(exit.get(90, TimeUnit.SECONDS)).as(err.toString()).isZero();
            assertThat(status(http, health)).as("query endpoint closed").isEqualTo(-1);
        } finally {
            stop.complete(null);
            executor.shutdownNow();
        }
    }

    /** One {@code engram run} in a thread of this JVM, with the real engine stage over a synthetic model. */
    record Run(
            Future<Integer> exit,
            StringWriter out,
            StringWriter err,
            CompletableFuture<Void> stop,
            ExecutorService executor) {
        static Run start(Path dataDir, Path model) throws Exception {
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            CompletableFuture<Void> stop = new CompletableFuture<>();
            CliContext ctx = new CliContext(
                    new PrintWriter(out, true),
                    new PrintWriter(err, true),
                    Map.of(),
                    InputStream.nullInputStream(),
                    false,
                    io.engram.topology.EngineSessionStage::from,
                    stop);
            ExecutorService executor = Executors.newSingleThreadExecutor();
            Future<Integer> exit = executor.submit(() -> new EngramCli(ctx)
                    .execute(
                            "--set",
                            "engram.embedded.kafka-port=0",
                            "--set",
                            "engram.queries.http-port=0",
                            "--set",
                            "engram.data-dir=" + dataDir,
                            "--set",
                            "engram.job.checkpoint-interval=300ms",
                            "--set",
                            "engram.model.dir=" + model,
                            "--set",
                            "engram.engine.batch-window=0ms",
                            "--set",
                            "engram.kafka.topic.partitions=2",
                            "run"));
            assertThat(KafkaBroker.await(
                            () -> QUERIES.matcher(out.toString()).find() || exit.isDone(), Duration.ofSeconds(90)))
                    .as("run prints where it listens; stderr: %s", err)
                    .isTrue();
            assertThat(exit.isDone()).as("run still running; stderr: %s", err).isFalse();
            return new Run(exit, out, err, stop, executor);
        }

        String bootstrap() {
            Matcher k = KAFKA.matcher(out.toString());
            assertThat(k.find()).isTrue();
            return k.group(1);
        }

        /** Asks {@code question} in {@code session} and waits for the committed answer. */
        io.engram.schemas.Answer ask(String session, String queryId, String question) throws Exception {
            try (KafkaProducer<byte[], byte[]> p = AnswerWorkload.producer(bootstrap());
                    KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(
                            Map.of(
                                    ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG,
                                    bootstrap(),
                                    ConsumerConfig.ISOLATION_LEVEL_CONFIG,
                                    "read_committed"),
                            new ByteArrayDeserializer(),
                            new ByteArrayDeserializer())) {
                List<TopicPartition> parts =
                        List.of(new TopicPartition("engram-answers", 0), new TopicPartition("engram-answers", 1));
                c.assign(parts);
                c.seekToBeginning(parts);
                p.send(AnswerWorkload.record(
                                "engram-events",
                                session,
                                AnswerWorkload.bytes(AnswerWorkload.query(session, queryId, question))))
                        .get(30, TimeUnit.SECONDS);
                io.engram.schemas.Answer[] found = new io.engram.schemas.Answer[1];
                KafkaBroker.pollUntil(
                        c,
                        records -> {
                            for (ConsumerRecord<byte[], byte[]> r : records) {
                                try {
                                    io.engram.schemas.Answer a = io.engram.schemas.Answer.getDecoder()
                                            .decode(r.value());
                                    if (a.getQueryId().equals(queryId)) {
                                        found[0] = a;
                                    }
                                } catch (java.io.IOException e) {
                                    throw new java.io.UncheckedIOException(e);
                                }
                            }
                            return found[0] != null;
                        },
                        Duration.ofSeconds(90));
                assertThat(found[0])
                        .as("answer to %s; stderr: %s", queryId, err)
                        .isNotNull();
                return found[0];
            }
        }

        void stopAndWait() throws Exception {
            stop.complete(null);
            assertThat(exit.get(90, TimeUnit.SECONDS)).as(err.toString()).isZero();
            executor.shutdownNow();
        }
    }

    @Test
    void aRerunRestoresEverySessionsMemoryAndAnswersAsBefore(@org.junit.jupiter.api.io.TempDir Path tmp)
            throws Exception {
        EngramSchemas.trustEngramClasses();
        Path model = io.engram.engine.model.synthetic.TinyModels.write(
                tmp.resolve("model"),
                io.engram.engine.model.synthetic.TinyModels.Variant.LLAMA,
                io.engram.engine.tensor.DType.F32,
                42);
        Path dataDir = tmp.resolve("data");
        io.engram.schemas.Answer before;
        Run first = Run.start(dataDir, model);
        try {
            assertThat(first.out().toString()).contains("memory:  new");
            try (KafkaProducer<byte[], byte[]> p = AnswerWorkload.producer(first.bootstrap())) {
                for (String s : List.of("a", "b")) {
                    p.send(AnswerWorkload.record(
                                    "engram-events",
                                    s,
                                    AnswerWorkload.bytes(BadInputIT.content(
                                            s,
                                            s + "-0",
                                            "The vault code of " + s + " is " + (s.equals("a") ? 7481 : 2210) + "."))))
                            .get(30, TimeUnit.SECONDS);
                }
            }
            before = first.ask("a", "q1", "What is the vault code?");
        } finally {
            first.stopAndWait();
        }
        Run second = Run.start(dataDir, model);
        try {
            assertThat(second.out().toString()).contains("memory:  restored from ");
            io.engram.schemas.Answer after = second.ask("a", "q2", "What is the vault code?");
            assertThat(after.getText()).isEqualTo(before.getText());
            assertThat(after.getMemory().getFingerprint())
                    .as("byte-identical memory")
                    .isEqualTo(before.getMemory().getFingerprint());
            assertThat(after.getMemoryTokens()).isEqualTo(before.getMemoryTokens());
            assertThat(after.getCitations()).isEqualTo(before.getCitations());
        } finally {
            second.stopAndWait();
        }
    }

    private static int status(HttpClient http, URI uri) {
        try {
            return http.send(
                            HttpRequest.newBuilder(uri)
                                    .timeout(Duration.ofSeconds(2))
                                    .GET()
                                    .build(),
                            HttpResponse.BodyHandlers.discarding())
                    .statusCode();
        } catch (Exception e) {
            return -1;
        }
    }
}
