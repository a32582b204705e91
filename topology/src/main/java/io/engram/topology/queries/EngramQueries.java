package io.engram.topology.queries;

import io.engram.schemas.Answer;
import io.engram.schemas.Summary;
import io.engram.topology.JobOptions;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.nio.file.Path;
import java.util.Properties;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.LogAndContinueExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The Kafka Streams query topology: materialises the job's outputs into persistent (RocksDB) stores that {@link
 * QueryServer} serves.
 *
 * <ul>
 *   <li>{@value #ANSWERS_STORE}: query id → latest {@link Answer} (re-keyed from session id; one repartition topic).
 *   <li>{@value #SUMMARIES_STORE}: session id → the {@link Summary} covering the latest input (largest last offset).
 * </ul>
 *
 * Reads read_committed (exactly_once_v2), so only answers of completed Flink checkpoints are served. Records that do
 * not decode are logged with topic/partition/offset and skipped.
 */
public final class EngramQueries {

    public static final String ANSWERS_STORE = "engram-answers-by-query";
    public static final String SUMMARIES_STORE = "engram-latest-summary";

    private EngramQueries() {}

    /** Adds the query topology to {@code builder}. */
    public static void build(StreamsBuilder builder, ResolvedOptions options) {
        AvroSerde<Answer> answerSerde = new AvroSerde<>(Answer.class);
        AvroSerde<Summary> summarySerde = new AvroSerde<>(Summary.class);

        builder.stream(options.get(KafkaOptions.ANSWERS_TOPIC), Consumed.with(Serdes.ByteArray(), answerSerde)
                        .withName("engram-answers-source"))
                .selectKey((session, answer) -> answer.getQueryId(), Named.as("engram-answers-by-query-key"))
                .toTable(Named.as("engram-answers-by-query"),
                        Materialized.<String, Answer, KeyValueStore<Bytes, byte[]>>as(ANSWERS_STORE)
                                .withKeySerde(Serdes.String())
                                .withValueSerde(answerSerde));

        builder.stream(options.get(KafkaOptions.SUMMARIES_TOPIC), Consumed.with(Serdes.String(), summarySerde)
                        .withName("engram-summaries-source"))
                .groupByKey(Grouped.with("engram-summaries-by-session", Serdes.String(), summarySerde))
                .reduce(EngramQueries::later, Named.as("engram-latest-summary"),
                        Materialized.<String, Summary, KeyValueStore<Bytes, byte[]>>as(SUMMARIES_STORE)
                                .withKeySerde(Serdes.String())
                                .withValueSerde(summarySerde));
    }

    /** The summary covering the later input; on a tie the newer one, so a re-summary replaces the old. */
    static Summary later(Summary current, Summary next) {
        return next.getLastEvent().getOffset() >= current.getLastEvent().getOffset() ? next : current;
    }

    /**
     * Streams settings: application id, brokers, exactly_once_v2, state under {@code <data-dir>/streams}, replication
     * of internal topics, and log-and-skip for undecodable records. Defaults only; {@code putIfAbsent} semantics are left
     * to callers that add their own.
     */
    public static Properties streamsConfig(ResolvedOptions options) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, options.get(QueryOptions.APPLICATION_ID));
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, options.get(KafkaOptions.BOOTSTRAP_SERVERS));
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, options.get(KafkaOptions.REPLICATION_FACTOR));
        Path stateDir = options.get(JobOptions.DATA_DIR).resolve("streams").toAbsolutePath().normalize();
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        p.put(StreamsConfig.DESERIALIZATION_EXCEPTION_HANDLER_CLASS_CONFIG, LogAndContinueExceptionHandler.class);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        return p;
    }
}
