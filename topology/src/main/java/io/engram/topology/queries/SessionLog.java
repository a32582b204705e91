package io.engram.topology.queries;

import io.engram.schemas.SourceCoordinates;
import java.util.Set;
import java.util.function.Function;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.ProcessorSupplier;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

/**
 * Keeps every record of a topic in a persistent store under {@link #key(String, int, long) session, partition and
 * offset}, so a session's records can be read in topic order with one prefix scan ({@link #prefix(String)}), and
 * tells {@link SessionChanges} about each write. The web view reads these logs; a session's records all sit on one
 * partition (the Kafka key is the session id), so key order is arrival order.
 *
 * @param <T> the record type
 */
public final class SessionLog<T extends SpecificRecord> implements ProcessorSupplier<String, T, Void, Void> {

    /**
     * What is kept of a record read at {@code at} with Kafka key {@code key}: the record to store (it may be changed),
     * or null to keep nothing.
     */
    @FunctionalInterface
    public interface Keep<T> {
        T apply(String key, T value, SourceCoordinates at);
    }

    private final String storeName;
    private final AvroSerde<T> serde;
    private final Function<T, String> sessionOf;
    private final Keep<T> keep;
    private final SessionChanges changes;

    /**
     * @param sessionOf the session a record belongs to
     * @param keep which records are kept, and how (see {@link Keep})
     */
    public SessionLog(String storeName, AvroSerde<T> serde, Function<T, String> sessionOf, Keep<T> keep,
            SessionChanges changes) {
        this.storeName = storeName;
        this.serde = serde;
        this.sessionOf = sessionOf;
        this.keep = keep;
        this.changes = changes;
    }

    /** The store key of a record: session id, NUL, zero-padded partition and offset (so keys sort by offset). */
    public static String key(String session, int partition, long offset) {
        return "%s\u0000%010d%019d".formatted(session, partition, offset);
    }

    /** The prefix of every key of {@code session}. */
    public static String prefix(String session) {
        return session + '\u0000';
    }

    /** The session part of a key made by {@link #key}. */
    public static String sessionOf(String key) {
        return key.substring(0, key.lastIndexOf('\u0000'));
    }

    @Override
    public Set<StoreBuilder<?>> stores() {
        return Set.of(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(storeName), Serdes.String(), serde)
                .withCachingDisabled());
    }

    @Override
    public Processor<String, T, Void, Void> get() {
        return new Processor<>() {
            private ProcessorContext<Void, Void> context;
            private KeyValueStore<String, T> store;

            @Override
            public void init(ProcessorContext<Void, Void> context) {
                this.context = context;
                this.store = context.getStateStore(storeName);
            }

            @Override
            public void process(Record<String, T> record) {
                if (record.value() == null) {
                    return;
                }
                RecordMetadata m = context.recordMetadata().orElseThrow(() -> new IllegalStateException(
                        "store " + storeName + " is fed from a topic; a record came without topic/partition/offset"));
                T kept = keep.apply(record.key(), record.value(), new SourceCoordinates(m.topic(), m.partition(), m.offset()));
                if (kept != null) {
                    String session = sessionOf.apply(kept);
                    store.put(key(session, m.partition(), m.offset()), kept);
                    changes.touch(session);
                }
            }
        };
    }
}
