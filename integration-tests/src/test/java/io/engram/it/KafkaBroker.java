package io.engram.it;

import io.engram.topology.EngramOptions;
import io.engram.topology.embedded.EmbeddedKafka;
import io.engram.topology.options.ResolvedOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * One in-process KRaft broker per test class (our {@link EmbeddedKafka}, on free ports, data under target/), with
 * helpers for unique topics, read_committed consumers and polling with deadlines. Register as
 * {@code @RegisterExtension static final KafkaBroker KAFKA = new KafkaBroker();}.
 */
public final class KafkaBroker implements BeforeAllCallback, AfterAllCallback {

    private EmbeddedKafka kafka;
    private Admin admin;
    private Path dir;

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        dir = Files.createTempDirectory(
                "kafka-" + context.getRequiredTestClass().getSimpleName() + "-");
        kafka = EmbeddedKafka.start(dir, 0, Map.of());
        admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()));
    }

    @Override
    public void afterAll(ExtensionContext context) {
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
        }
        if (kafka != null) {
            kafka.close();
        }
    }

    public String bootstrapServers() {
        return kafka.bootstrapServers();
    }

    /** A fresh directory for one test's state (under target/, like the broker's). */
    public Path newDir(String prefix) throws Exception {
        return Files.createTempDirectory(dir, prefix + "-");
    }

    /** Creates {@code <prefix>-<random>} and returns its name. */
    public String newTopic(String prefix, int partitions) throws Exception {
        String name = prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1)))
                .all()
                .get(30, TimeUnit.SECONDS);
        return name;
    }

    /**
     * Options for a test: this broker, fresh topics for input/answers/summaries/attributions/dead letters, unique group,
     * transactional prefix and application id, plus {@code overrides}.
     */
    public ResolvedOptions newOptions(int inputPartitions, Map<String, String> overrides) throws Exception {
        String run = UUID.randomUUID().toString().substring(0, 8);
        Map<String, String> values = new HashMap<>();
        values.put("engram.kafka.bootstrap-servers", bootstrapServers());
        values.put("engram.kafka.topic.input", newTopic("in", inputPartitions));
        values.put("engram.kafka.topic.answers", newTopic("answers", inputPartitions));
        values.put("engram.kafka.topic.summaries", newTopic("summaries", inputPartitions));
        values.put("engram.kafka.topic.attributions", newTopic("attributions", inputPartitions));
        values.put("engram.kafka.topic.dead-letters", newTopic("dlq", inputPartitions));
        values.put("engram.kafka.group-id", "it-" + run);
        values.put("engram.kafka.transactional-id-prefix", "it-" + run);
        values.put("engram.queries.application-id", "it-" + run);
        values.put("engram.queries.http-port", "0");
        values.put("engram.data-dir", newDir("data").toString());
        values.putAll(overrides);
        return EngramOptions.of(values);
    }

    /** Produces {@code events} to the input topic of {@code options}, keyed by session, each acknowledged by the broker. */
    public void produceEvents(ResolvedOptions options, List<io.engram.schemas.EngramEvent> events) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = producer()) {
            for (io.engram.schemas.EngramEvent e : events) {
                byte[] v = AnswerWorkload.bytes(e);
                p.send(new org.apache.kafka.clients.producer.ProducerRecord<>(
                                options.get(io.engram.topology.KafkaOptions.INPUT_TOPIC),
                                e.getSessionId().getBytes(java.nio.charset.StandardCharsets.UTF_8),
                                v))
                        .get(10, TimeUnit.SECONDS);
            }
        }
    }

    public KafkaProducer<byte[], byte[]> producer() {
        return new KafkaProducer<>(
                Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers(), ProducerConfig.ACKS_CONFIG, "all"),
                new ByteArraySerializer(),
                new ByteArraySerializer());
    }

    /** A read_committed consumer assigned to every partition of {@code topic}, from the beginning. */
    public KafkaConsumer<byte[], byte[]> readCommitted(String topic) {
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(
                Map.of(
                        ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG,
                        bootstrapServers(),
                        ConsumerConfig.ISOLATION_LEVEL_CONFIG,
                        "read_committed",
                        ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG,
                        false),
                new ByteArrayDeserializer(),
                new ByteArrayDeserializer());
        List<TopicPartition> parts = c.partitionsFor(topic, Duration.ofSeconds(10)).stream()
                .map(p -> new TopicPartition(topic, p.partition()))
                .toList();
        c.assign(parts);
        c.seekToBeginning(parts);
        return c;
    }

    /**
     * Polls until {@code done} holds for everything received so far, or the deadline passes.
     *
     * @return everything received (also when the deadline passed: the caller's assertion then says what is missing)
     */
    public static List<ConsumerRecord<byte[], byte[]>> pollUntil(
            KafkaConsumer<byte[], byte[]> consumer,
            Predicate<List<ConsumerRecord<byte[], byte[]>>> done,
            Duration timeout) {
        List<ConsumerRecord<byte[], byte[]>> all = new ArrayList<>();
        Instant deadline = Instant.now().plus(timeout);
        while (!done.test(all) && Instant.now().isBefore(deadline)) {
            consumer.poll(Duration.ofMillis(200)).forEach(all::add);
        }
        return all;
    }

    /** Polls {@code condition} until it holds or {@code timeout} passes; returns whether it held. */
    public static boolean await(java.util.function.BooleanSupplier condition, Duration timeout)
            throws InterruptedException {
        Instant deadline = Instant.now().plus(timeout);
        while (Instant.now().isBefore(deadline)) {
            if (condition.getAsBoolean()) {
                return true;
            }
            TimeUnit.MILLISECONDS.sleep(100); // polling interval, bounded by the deadline
        }
        return condition.getAsBoolean();
    }
}
