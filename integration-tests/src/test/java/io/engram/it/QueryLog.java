package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.KafkaProducer;

/**
 * The queries a test asked: produces each as an {@code EngramEvent} to the input topic (keyed by session) and remembers
 * when it was sent, for which session and in which phase of the test. Sends are asynchronous; {@link #requireDelivered}
 * fails if Kafka refused one. Used from the test thread only (the delivery callbacks only record failures).
 */
final class QueryLog {

    /** Pacing of a query stream: one query per this many milliseconds. */
    private static final long STREAM_INTERVAL_MS = 200;

    record Sent(String session, String phase, long nanos) {}

    private final KafkaProducer<byte[], byte[]> producer;
    private final String topic;
    private final List<String> ids = new ArrayList<>();
    private final Map<String, Sent> sent = new ConcurrentHashMap<>();
    private final Map<String, Exception> failed = new ConcurrentHashMap<>();
    private int next;
    private long lastStreamed;

    QueryLog(KafkaProducer<byte[], byte[]> producer, String topic) {
        this.producer = producer;
        this.topic = topic;
    }

    /** Asks {@code question} of {@code session} now. */
    String ask(String session, String question, String phase) throws Exception {
        String id = UUID.randomUUID().toString();
        byte[] value = AnswerWorkload.bytes(AnswerWorkload.query(session, id, question));
        ids.add(id);
        sent.put(id, new Sent(session, phase, System.nanoTime()));
        producer.send(AnswerWorkload.record(topic, session, value), (m, e) -> {
            if (e != null) {
                failed.put(id, e);
            }
        });
        return id;
    }

    /** Asks the next (session, question) in round-robin order, unless the last streamed query is under 200 ms old. */
    void askNext(List<String> sessions, String phase) {
        long now = System.nanoTime();
        if (now - lastStreamed < TimeUnit.MILLISECONDS.toNanos(STREAM_INTERVAL_MS)) {
            return;
        }
        lastStreamed = now;
        String session = sessions.get(next % sessions.size());
        String question = AnswerWorkload.QUESTIONS.get((next / sessions.size()) % AnswerWorkload.QUESTIONS.size());
        next++;
        try {
            ask(session, question, phase);
        } catch (Exception e) {
            throw new IllegalStateException("cannot encode a query for " + session, e);
        }
    }

    /** Streams queries round-robin over {@code sessions} for {@code duration}, one per 200 ms. */
    void streamFor(Duration duration, List<String> sessions, String phase) throws InterruptedException {
        long end = System.nanoTime() + duration.toNanos();
        while (System.nanoTime() < end) {
            askNext(sessions, phase);
            TimeUnit.MILLISECONDS.sleep(STREAM_INTERVAL_MS / 4); // pacing of the stream, not a wait for a condition
        }
    }

    /** Fails if Kafka refused any query (call after {@code producer.flush()}). */
    void requireDelivered() {
        assertThat(failed).as("queries Kafka did not accept").isEmpty();
    }

    /** Every query id, in the order asked. */
    List<String> ids() {
        return List.copyOf(ids);
    }

    /** Ids of the queries sent after {@code nanos} ({@link System#nanoTime()}). */
    List<String> sentAfter(long nanos) {
        return ids.stream().filter(id -> sent.get(id).nanos() > nanos).toList();
    }

    long sentNanos(String id) {
        return sent(id).nanos();
    }

    /** When query {@code id} was sent; {@link Long#MIN_VALUE} for an id this log never asked. */
    long sentAt(String id) {
        Sent s = sent.get(id);
        return s == null ? Long.MIN_VALUE : s.nanos();
    }

    String phase(String id) {
        return sent(id).phase();
    }

    String session(String id) {
        return sent(id).session();
    }

    private Sent sent(String id) {
        Sent s = sent.get(id);
        if (s == null) {
            throw new IllegalArgumentException("query " + id + " was not asked by this test");
        }
        return s;
    }
}
