package io.engram.topology.cli;

import io.engram.schemas.Answer;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * The reliability soak's stream: several sessions, each round a dialogue turn planting a fact and a question about a
 * fact of an earlier (or the same) round, drawn from a seed; and what came out for it (answers and dead letters, read
 * committed from the beginning of their topics so that duplicates are counted too).
 */
final class SoakWorkload {
    private static final String[] ITEMS = {
        "blue lantern",
        "brass key",
        "old map",
        "green ledger",
        "silver compass",
        "red kettle",
        "iron box",
        "wooden flute",
        "paper kite",
        "glass jar",
        "stone owl",
        "copper bell"
    };
    private static final String[] PLACES = {
        "the attic",
        "the boathouse",
        "the cellar",
        "the garden shed",
        "the library",
        "the lighthouse",
        "the mill",
        "the station"
    };

    /** One input event; queries use their event id as query id. */
    record Event(String session, String id, boolean query, String text) {
        /** Key of this event's outcome: session and event (or query) id. */
        String key() {
            return session + "/" + id;
        }
    }

    private SoakWorkload() {}

    /** The events of each round, sessions interleaved: a turn, then a question, per session. */
    static List<List<Event>> rounds(int sessions, int rounds, long seed) {
        Random r = new Random(seed);
        List<List<Event>> out = new ArrayList<>();
        List<List<String[]>> facts = new ArrayList<>();
        for (int s = 0; s < sessions; s++) {
            facts.add(new ArrayList<>());
        }
        for (int round = 0; round < rounds; round++) {
            List<Event> events = new ArrayList<>();
            for (int s = 0; s < sessions; s++) {
                String session = "soak-" + s;
                String item = ITEMS[r.nextInt(ITEMS.length)];
                String place = PLACES[r.nextInt(PLACES.length)];
                String code = String.valueOf(1000 + r.nextInt(9000));
                facts.get(s).add(new String[] {item, place, code});
                events.add(new Event(
                        session,
                        session + "-r" + round + "-turn",
                        false,
                        "In round %d we put the %s in %s. The code of the %s is %s."
                                .formatted(round + 1, item, place, item, code)));
                String[] asked = facts.get(s).get(r.nextInt(facts.get(s).size()));
                events.add(new Event(
                        session,
                        session + "-r" + round + "-q",
                        true,
                        r.nextBoolean()
                                ? "What is the code of the " + asked[0] + "?"
                                : "Where did we put the " + asked[0] + "?"));
            }
            out.add(events);
        }
        return out;
    }

    /** Produces {@code events} in order, keyed by session, and waits until the broker has them all. */
    static void produce(KafkaProducer<byte[], byte[]> producer, String topic, List<Event> events) throws Exception {
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        for (Event e : events) {
            sent.add(producer.send(
                    new ProducerRecord<>(topic, e.session().getBytes(StandardCharsets.UTF_8), encode(e))));
        }
        for (Future<RecordMetadata> f : sent) {
            f.get(60, TimeUnit.SECONDS);
        }
    }

    private static byte[] encode(Event e) throws java.io.IOException {
        EngramEvent.Builder b = EngramEvent.newBuilder()
                .setSessionId(e.session())
                .setEventId(e.id())
                .setTimestampMs(System.currentTimeMillis());
        if (e.query()) {
            b.setPayload(new QueryEvent(
                    e.id(),
                    e.text(),
                    GenerationOptions.newBuilder()
                            .setMaxNewTokens(12)
                            .setTemperature(0f)
                            .setStop(List.of("\n"))
                            .build()));
        } else {
            b.setPayload(ContentEvent.newBuilder()
                    .setKind(ContentKind.DIALOGUE_TURN)
                    .setText(e.text())
                    .setRole("user")
                    .build());
        }
        ByteBuffer buf = EngramEvent.getEncoder().encode(b.build());
        byte[] v = new byte[buf.remaining()];
        buf.get(v);
        return v;
    }

    /** Everything that came out, by {@link Event#key()}: a list so that duplicates show. */
    record Outcomes(Map<String, List<Answer>> answers, Map<String, List<DeadLetter>> deadLetters) {
        int count(Event e) {
            return answers.getOrDefault(e.key(), List.of()).size()
                    + deadLetters.getOrDefault(e.key(), List.of()).size();
        }
    }

    /**
     * Reads the answers and dead letters (committed only) from the beginning until every query in {@code queries} has an
     * outcome or {@code timeout} passes, then {@code settle} longer, so that an outcome committed twice is seen twice.
     */
    static Outcomes collect(ResolvedOptions options, List<Event> queries, Duration timeout, Duration settle) {
        BinaryMessageDecoder<Answer> answerDecoder = EngramSchemas.decoder(Answer.class);
        BinaryMessageDecoder<DeadLetter> deadDecoder = EngramSchemas.decoder(DeadLetter.class);
        String answersTopic = options.get(KafkaOptions.ANSWERS_TOPIC);
        String deadTopic = options.get(KafkaOptions.DEAD_LETTER_TOPIC);
        Outcomes out = new Outcomes(new HashMap<>(), new HashMap<>());
        try (KafkaConsumer<byte[], byte[]> consumer = KafkaClients.readCommittedConsumer(options)) {
            List<TopicPartition> parts = new ArrayList<>();
            for (String topic : List.of(answersTopic, deadTopic)) {
                consumer.partitionsFor(topic, Duration.ofSeconds(30))
                        .forEach(p -> parts.add(new TopicPartition(topic, p.partition())));
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Instant deadline = Instant.now().plus(timeout);
            Instant settled = null;
            while (Instant.now().isBefore(settled != null ? settled : deadline)) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(250))) {
                    try {
                        if (r.topic().equals(answersTopic)) {
                            Answer a = answerDecoder.decode(r.value());
                            out.answers()
                                    .computeIfAbsent(a.getSessionId() + "/" + a.getQueryId(), k -> new ArrayList<>())
                                    .add(a);
                        } else {
                            DeadLetter d = deadDecoder.decode(r.value());
                            out.deadLetters()
                                    .computeIfAbsent(d.getSessionId() + "/" + d.getEventId(), k -> new ArrayList<>())
                                    .add(d);
                        }
                    } catch (java.io.IOException e) {
                        throw new IllegalStateException(
                                "undecodable record on " + r.topic() + " at offset " + r.offset(), e);
                    }
                }
                if (settled == null && queries.stream().allMatch(q -> out.count(q) > 0)) {
                    settled = Instant.now().plus(settle);
                }
            }
        }
        return out;
    }
}
