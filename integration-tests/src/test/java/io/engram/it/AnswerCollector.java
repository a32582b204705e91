package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.Answer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * Reads the answers topic from the beginning with {@code isolation.level=read_committed} on its own thread, for the
 * whole test, and remembers every answer with the time it was first seen. Its thread owns the consumer; the test
 * thread reads the results through the thread-safe accessors. {@link #close()} stops the thread.
 */
final class AnswerCollector implements AutoCloseable {

    private final String bootstrapServers;
    private final String topic;
    private final List<Answer> all = new CopyOnWriteArrayList<>();
    private final Map<String, Long> firstSeen = new ConcurrentHashMap<>();
    private final Map<Integer, Long> positions = new ConcurrentHashMap<>();
    private final List<String> undecodable = new CopyOnWriteArrayList<>();
    private final AtomicBoolean stop = new AtomicBoolean();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final Thread thread;

    private AnswerCollector(String bootstrapServers, String topic) {
        this.bootstrapServers = bootstrapServers;
        this.topic = topic;
        this.thread = new Thread(this::consume, "answers-" + topic);
        this.thread.setDaemon(true);
    }

    static AnswerCollector start(String bootstrapServers, String topic) {
        AnswerCollector c = new AnswerCollector(bootstrapServers, topic);
        c.thread.start();
        return c;
    }

    private KafkaConsumer<byte[], byte[]> consumer() {
        return new KafkaConsumer<>(
                Map.of(
                        ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG,
                        bootstrapServers,
                        ConsumerConfig.ISOLATION_LEVEL_CONFIG,
                        "read_committed",
                        ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG,
                        false),
                new ByteArrayDeserializer(),
                new ByteArrayDeserializer());
    }

    private void consume() {
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            List<TopicPartition> parts = c.partitionsFor(topic, Duration.ofSeconds(30)).stream()
                    .map(p -> new TopicPartition(topic, p.partition()))
                    .toList();
            c.assign(parts);
            c.seekToBeginning(parts);
            while (!stop.get()) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
                    long now = System.nanoTime();
                    try {
                        Answer a = Answer.getDecoder().decode(r.value());
                        all.add(a);
                        firstSeen.putIfAbsent(a.getQueryId(), now);
                    } catch (Exception e) {
                        undecodable.add("%s-%d@%d: %s".formatted(r.topic(), r.partition(), r.offset(), e));
                    }
                }
                for (TopicPartition p : parts) {
                    positions.put(p.partition(), c.position(p));
                }
            }
        } catch (Throwable t) {
            failure.set(t);
        }
    }

    /** Waits until every id in {@code ids} has an answer; fails naming how many and which are missing. */
    void awaitAll(Collection<String> ids, Duration timeout, String what) throws InterruptedException {
        boolean ok = KafkaBroker.await(
                () -> failure.get() != null || firstSeen.keySet().containsAll(ids), timeout);
        assertThat(failure.get()).as("answer consumer on %s", topic).isNull();
        List<String> missing =
                ids.stream().filter(id -> !firstSeen.containsKey(id)).toList();
        assertThat(ok && missing.isEmpty())
                .as(
                        "answers to %s within %s: %d of %d missing, e.g. %s",
                        what,
                        timeout,
                        missing.size(),
                        ids.size(),
                        missing.stream().limit(5).toList())
                .isTrue();
    }

    /** Waits until the consumer has read up to the topic's current last stable offset on every partition. */
    void drainToEnd(Duration timeout) throws InterruptedException {
        Map<TopicPartition, Long> end;
        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            List<TopicPartition> parts = c.partitionsFor(topic, Duration.ofSeconds(30)).stream()
                    .map(p -> new TopicPartition(topic, p.partition()))
                    .toList();
            end = c.endOffsets(parts, Duration.ofSeconds(30));
        }
        boolean ok = KafkaBroker.await(
                () -> end.entrySet().stream()
                        .allMatch(e -> positions.getOrDefault(e.getKey().partition(), -1L) >= e.getValue()),
                timeout);
        assertThat(ok)
                .as("answers read up to the end offsets %s within %s (at %s)", end, timeout, positions)
                .isTrue();
        assertThat(undecodable).as("undecodable records on %s", topic).isEmpty();
    }

    /** Every answer read so far, duplicates included, in the order read. */
    List<Answer> all() {
        return new ArrayList<>(all);
    }

    /** When the answer to {@code queryId} was first seen ({@link System#nanoTime()}). */
    long seenNanos(String queryId) {
        Long t = firstSeen.get(queryId);
        if (t == null) {
            throw new IllegalArgumentException("no answer to " + queryId + " seen");
        }
        return t;
    }

    /** When the first answer of all was seen. */
    long firstSeenNanos() {
        return firstSeen.values().stream()
                .mapToLong(Long::longValue)
                .min()
                .orElseThrow(() -> new IllegalStateException("no answer seen yet"));
    }

    /** When the first answer to any of {@code queryIds} was seen. */
    long firstSeenAfter(Collection<String> queryIds) {
        return queryIds.stream()
                .filter(firstSeen::containsKey)
                .mapToLong(firstSeen::get)
                .min()
                .orElseThrow(() -> new IllegalStateException("none of " + queryIds.size() + " queries answered"));
    }

    @Override
    public void close() throws InterruptedException {
        stop.set(true);
        thread.join(TimeUnit.SECONDS.toMillis(10));
    }
}
