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
        CliContext ctx = new CliContext(new PrintWriter(out, true), new PrintWriter(err, true), Map.of(),
                InputStream.nullInputStream(), false, options -> BadInputIT.RECORDING_STAGE, stop);
        ExecutorService executor = Executors.newSingleThreadExecutor();
        try {
            Future<Integer> exit = executor.submit(() -> new EngramCli(ctx).execute(
                    "--set", "engram.embedded.kafka-port=0", "--set", "engram.queries.http-port=0",
                    "--set", "engram.data-dir=" + dataDir, "--set", "engram.job.checkpoint-interval=300ms",
                    "--set", "engram.kafka.topic.partitions=2", "run"));
            assertThat(KafkaBroker.await(() -> QUERIES.matcher(out.toString()).find() || exit.isDone(),
                    Duration.ofSeconds(60))).as("run prints where it listens; stderr: %s", err).isTrue();
            assertThat(exit.isDone()).as("run still running; stderr: %s", err).isFalse();

            Matcher k = KAFKA.matcher(out.toString());
            Matcher q = QUERIES.matcher(out.toString());
            assertThat(k.find() && q.find()).as(out.toString()).isTrue();
            String bootstrap = k.group(1);
            URI health = URI.create(q.group(1) + "/health");
            HttpClient http = HttpClient.newHttpClient();
            assertThat(KafkaBroker.await(() -> status(http, health) == 200, Duration.ofSeconds(60))).isTrue();

            try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                    bootstrap), new ByteArraySerializer(), new ByteArraySerializer())) {
                p.send(new ProducerRecord<>("engram-events", "s1".getBytes(StandardCharsets.UTF_8), new byte[] {42}))
                        .get(10, TimeUnit.SECONDS);
            }
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(Map.of(
                    ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                    ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"),
                    new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
                List<TopicPartition> parts = List.of(new TopicPartition("engram-dead-letters", 0),
                        new TopicPartition("engram-dead-letters", 1));
                c.assign(parts);
                c.seekToBeginning(parts);
                List<ConsumerRecord<byte[], byte[]>> dlq = KafkaBroker.pollUntil(c, r -> !r.isEmpty(),
                        Duration.ofSeconds(60));
                assertThat(dlq).singleElement().satisfies(r -> assertThat(DeadLetter.getDecoder().decode(r.value())
                        .getErrorClass()).isEqualTo(ErrorClass.UNDECODABLE));
            }

            stop.complete(null);
            assertThat(exit.get(90, TimeUnit.SECONDS)).as(err.toString()).isZero();
            assertThat(status(http, health)).as("query endpoint closed").isEqualTo(-1);
        } finally {
            stop.complete(null);
            executor.shutdownNow();
        }
    }

    private static int status(HttpClient http, URI uri) {
        try {
            return http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(2)).GET().build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (Exception e) {
            return -1;
        }
    }
}
