package io.engram.topology;

import io.engram.operators.RawRecord;
import io.engram.topology.options.ResolvedOptions;
import java.util.Objects;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

/**
 * The job's inputs.
 *
 * @param events raw records of the input topic; must never fail on bad bytes (decoding is the job's first operator)
 */
public record EngramSources(Source<RawRecord, ?, ?> events) {

    public EngramSources {
        Objects.requireNonNull(events, "events source");
    }

    /**
     * The production source: {@link KafkaOptions#INPUT_TOPIC}, read_committed, group {@link KafkaOptions#GROUP_ID}
     * (offsets committed on checkpoints), starting from the group's offsets or else the earliest.
     */
    /** The pass-through client properties ({@code engram.kafka.properties.*}), without the bootstrap servers. */
    static java.util.Properties passThrough(ResolvedOptions options) {
        java.util.Properties p = new java.util.Properties();
        p.putAll(options.kafkaProperties());
        return p;
    }

    public static EngramSources kafka(ResolvedOptions options) {
        KafkaSource<RawRecord> source = KafkaSource.<RawRecord>builder()
                .setBootstrapServers(options.get(KafkaOptions.BOOTSTRAP_SERVERS))
                .setTopics(options.get(KafkaOptions.INPUT_TOPIC))
                .setGroupId(options.get(KafkaOptions.GROUP_ID))
                .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setProperties(passThrough(options))
                .setDeserializer(new RawRecordDeserializer())
                .setProperty(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed")
                .setProperty("commit.offsets.on.checkpoint", "true")
                .build();
        return new EngramSources(source);
    }
}
