package io.engram.topology.queries;

import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.ControlAction;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.SourceCoordinates;
import io.engram.schemas.SourceSegment;
import io.engram.schemas.Summary;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.ProcessorSupplier;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One processor over the input topic and the job's output topics (all keyed by session id, with the same partition
 * count, so a session's records of every topic reach the same task): it keeps the stores {@link EngramQueries} names
 * and erases a session's copy when the session is closed or reset. A CLOSE_SESSION or RESET event deletes every record
 * of its session from every store (their changelogs get the deletes) and remembers its input offset: outputs that
 * arrive later but belong to before it (an answer to an earlier query, a summary or attribution of earlier text) are
 * dropped. An input event the job refused (its dead letter names its coordinates) is removed from the event log.
 */
final class SessionViews implements ProcessorSupplier<String, byte[], Void, Void> {
    private static final Logger LOG = LoggerFactory.getLogger(SessionViews.class);
    /** Session id → input offset of its latest CLOSE_SESSION or RESET. */
    static final String ERASED_STORE = "engram-session-erased";

    /** The topics read, by role. */
    record Topics(String input, String answers, String summaries, String attributions, String deadLetters) {
        List<String> all() {
            return List.of(input, answers, summaries, attributions, deadLetters);
        }
    }

    private final Topics topics;
    private final SessionChanges changes;

    SessionViews(Topics topics, SessionChanges changes) {
        this.topics = topics;
        this.changes = changes;
    }

    @Override
    public Set<StoreBuilder<?>> stores() {
        return Set.of(
                store(EngramQueries.ANSWERS_STORE, new AvroSerde<>(Answer.class)),
                store(EngramQueries.SUMMARIES_STORE, new AvroSerde<>(Summary.class)),
                store(EngramQueries.SESSION_EVENTS_STORE, new AvroSerde<>(EngramEvent.class)),
                store(EngramQueries.SESSION_ANSWERS_STORE, new AvroSerde<>(Answer.class)),
                store(EngramQueries.SESSION_SUMMARIES_STORE, new AvroSerde<>(Summary.class)),
                store(EngramQueries.SESSION_ATTRIBUTIONS_STORE, new AvroSerde<>(Attribution.class)),
                Stores.keyValueStoreBuilder(
                                Stores.persistentKeyValueStore(ERASED_STORE), Serdes.String(), Serdes.Long())
                        .withCachingDisabled());
    }

    private static <T extends org.apache.avro.specific.SpecificRecord> StoreBuilder<KeyValueStore<String, T>> store(
            String name, AvroSerde<T> serde) {
        return Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(name), Serdes.String(), serde)
                .withCachingDisabled();
    }

    @Override
    public Processor<String, byte[], Void, Void> get() {
        return new Views();
    }

    private final class Views implements Processor<String, byte[], Void, Void> {
        private ProcessorContext<Void, Void> context;
        private KeyValueStore<String, Answer> answers;
        private KeyValueStore<String, Summary> latest;
        private KeyValueStore<String, EngramEvent> eventLog;
        private KeyValueStore<String, Answer> answerLog;
        private KeyValueStore<String, Summary> summaryLog;
        private KeyValueStore<String, Attribution> attributionLog;
        private KeyValueStore<String, Long> erased;
        private AvroSerde<EngramEvent> eventSerde;
        private AvroSerde<Answer> answerSerde;
        private AvroSerde<Summary> summarySerde;
        private AvroSerde<Attribution> attributionSerde;
        private AvroSerde<DeadLetter> deadLetterSerde;

        @Override
        public void init(ProcessorContext<Void, Void> context) {
            this.context = context;
            answers = context.getStateStore(EngramQueries.ANSWERS_STORE);
            latest = context.getStateStore(EngramQueries.SUMMARIES_STORE);
            eventLog = context.getStateStore(EngramQueries.SESSION_EVENTS_STORE);
            answerLog = context.getStateStore(EngramQueries.SESSION_ANSWERS_STORE);
            summaryLog = context.getStateStore(EngramQueries.SESSION_SUMMARIES_STORE);
            attributionLog = context.getStateStore(EngramQueries.SESSION_ATTRIBUTIONS_STORE);
            erased = context.getStateStore(ERASED_STORE);
            eventSerde = new AvroSerde<>(EngramEvent.class);
            answerSerde = new AvroSerde<>(Answer.class);
            summarySerde = new AvroSerde<>(Summary.class);
            attributionSerde = new AvroSerde<>(Attribution.class);
            deadLetterSerde = new AvroSerde<>(DeadLetter.class);
        }

        @Override
        public void process(Record<String, byte[]> record) {
            if (record.value() == null) {
                return;
            }
            RecordMetadata m = context.recordMetadata()
                    .orElseThrow(() -> new IllegalStateException(
                            "the session views are fed from topics; a record came without topic/partition/offset"));
            try {
                String topic = m.topic();
                if (topic.equals(topics.input())) {
                    event(record.key(), eventSerde.deserializer().deserialize(topic, record.value()), m);
                } else if (topic.equals(topics.answers())) {
                    answer(answerSerde.deserializer().deserialize(topic, record.value()), m);
                } else if (topic.equals(topics.summaries())) {
                    summary(summarySerde.deserializer().deserialize(topic, record.value()), m);
                } else if (topic.equals(topics.attributions())) {
                    attribution(attributionSerde.deserializer().deserialize(topic, record.value()), m);
                } else if (topic.equals(topics.deadLetters())) {
                    deadLetter(deadLetterSerde.deserializer().deserialize(topic, record.value()));
                }
            } catch (RuntimeException e) {
                LOG.warn(
                        "skipping the record at {}-{}@{}: it does not decode ({})",
                        m.topic(),
                        m.partition(),
                        m.offset(),
                        e.getMessage());
            }
        }

        private void event(String key, EngramEvent e, RecordMetadata m) {
            SourceCoordinates at = new SourceCoordinates(m.topic(), m.partition(), m.offset());
            EngramEvent kept = EngramQueries.keepEvent(key, e, at);
            if (kept == null) {
                return;
            }
            String session = kept.getSessionId();
            if (kept.getPayload() instanceof ControlEvent c
                    && (c.getAction() == ControlAction.CLOSE_SESSION || c.getAction() == ControlAction.RESET)) {
                erase(session, m.offset());
                return;
            }
            eventLog.put(SessionLog.key(session, m.partition(), m.offset()), kept);
            changes.touch(session);
        }

        private void answer(Answer a, RecordMetadata m) {
            SourceCoordinates q = a.getQuerySource();
            if (q != null && before(a.getSessionId(), q.getOffset())) {
                return; // the answer to a query from before the session was closed or reset
            }
            answers.put(EngramQueries.answerKey(a.getSessionId(), a.getQueryId()), a);
            answerLog.put(SessionLog.key(a.getSessionId(), m.partition(), m.offset()), a);
            changes.touch(a.getSessionId());
        }

        private void summary(Summary s, RecordMetadata m) {
            if (s.getLastEvent() != null
                    && before(s.getSessionId(), s.getLastEvent().getOffset())) {
                return;
            }
            Summary current = latest.get(s.getSessionId());
            latest.put(s.getSessionId(), current == null ? s : EngramQueries.later(current, s));
            summaryLog.put(SessionLog.key(s.getSessionId(), m.partition(), m.offset()), s);
            changes.touch(s.getSessionId());
        }

        private void attribution(Attribution a, RecordMetadata m) {
            for (SourceSegment seg : a.getSegments()) {
                if (seg.getSource() != null
                        && before(a.getSessionId(), seg.getSource().getOffset())) {
                    return; // it cites text from before the session was closed or reset
                }
            }
            attributionLog.put(SessionLog.key(a.getSessionId(), m.partition(), m.offset()), a);
            changes.touch(a.getSessionId());
        }

        private void deadLetter(DeadLetter d) {
            SourceCoordinates s = d.getSource();
            if (d.getSessionId() == null || s == null || !s.getTopic().equals(topics.input())) {
                return;
            }
            if (eventLog.delete(SessionLog.key(d.getSessionId(), s.getPartition(), s.getOffset())) != null) {
                changes.touch(d.getSessionId());
            }
        }

        /** Whether input offset {@code offset} of the session comes before its latest close or reset. */
        private boolean before(String session, long offset) {
            Long at = erased.get(session);
            return at != null && offset < at;
        }

        private void erase(String session, long offset) {
            Long was = erased.get(session);
            erased.put(session, Math.max(offset, was == null ? -1 : was));
            int n = deleteAll(eventLog, SessionLog.prefix(session))
                    + deleteAll(answerLog, SessionLog.prefix(session))
                    + deleteAll(summaryLog, SessionLog.prefix(session))
                    + deleteAll(attributionLog, SessionLog.prefix(session))
                    + deleteAll(answers, EngramQueries.answerKey(session, ""));
            if (latest.delete(session) != null) {
                n++;
            }
            LOG.info("session {}: closed or reset at input offset {}; {} stored records erased", session, offset, n);
            changes.touch(session);
        }

        private static <T> int deleteAll(KeyValueStore<String, T> store, String prefix) {
            List<String> keys = new ArrayList<>();
            try (KeyValueIterator<String, T> it = store.prefixScan(prefix, new StringSerializer())) {
                while (it.hasNext()) {
                    KeyValue<String, T> kv = it.next();
                    keys.add(kv.key);
                }
            }
            keys.forEach(store::delete);
            return keys.size();
        }
    }
}
