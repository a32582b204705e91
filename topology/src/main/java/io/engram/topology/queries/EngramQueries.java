package io.engram.topology.queries;

import io.engram.schemas.Answer;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.Summary;
import io.engram.topology.JobOptions;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.nio.file.Path;
import java.util.Properties;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.LogAndContinueExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Named;

/**
 * The Kafka Streams query topology: materialises the job's outputs into persistent (RocksDB) stores that {@link
 * QueryServer} serves.
 *
 * One processor ({@link SessionViews}) reads the input topic and the job's output and dead-letter topics (all keyed by
 * session id, with the same partition count: {@code engram topics create} makes them so) and keeps:
 *
 * <ul>
 *   <li>{@value #ANSWERS_STORE}: (session id, query id) → latest {@link Answer}, keyed by {@link #answerKey}: a query
 *       id finds an answer only together with its own session.
 *   <li>{@value #SUMMARIES_STORE}: session id → the {@link Summary} covering the latest input (largest last offset).
 *   <li>Per-session logs for the web view ({@link SessionLog}: session, partition, offset → record, in topic order):
 *       {@value #SESSION_EVENTS_STORE} (the input's content, query and control events, with their coordinates set),
 *       {@value #SESSION_ANSWERS_STORE}, {@value #SESSION_SUMMARIES_STORE} and {@value #SESSION_ATTRIBUTIONS_STORE}.
 * </ul>
 *
 * A session's CLOSE_SESSION or RESET erases it from every store (and so from their changelogs), and events the job
 * refused leave the event log. Reads read_committed (exactly_once_v2), so only answers of completed Flink checkpoints
 * are served. Records that do not decode are logged with topic/partition/offset and skipped.
 */
public final class EngramQueries {

    public static final String ANSWERS_STORE = "engram-answers-by-query";
    public static final String SUMMARIES_STORE = "engram-latest-summary";
    public static final String SESSION_EVENTS_STORE = "engram-session-events";
    public static final String SESSION_ANSWERS_STORE = "engram-session-answers";
    public static final String SESSION_SUMMARIES_STORE = "engram-session-summaries";
    public static final String SESSION_ATTRIBUTIONS_STORE = "engram-session-attributions";

    private EngramQueries() {}

    /**
     * Adds the query topology to {@code builder}.
     *
     * @return where the session logs announce their writes (for {@link QueryServer}'s live views)
     */
    /**
     * The key of an answer in {@value #ANSWERS_STORE}: the session id, a unit separator (no id may contain control
     * characters, see {@code EventDecoder}), then the query id.
     */
    public static String answerKey(String session, String queryId) {
        return session + '\u001f' + queryId;
    }

    public static SessionChanges build(StreamsBuilder builder, ResolvedOptions options) {
        SessionChanges changes = new SessionChanges();
        SessionViews.Topics topics = new SessionViews.Topics(
                options.get(KafkaOptions.INPUT_TOPIC),
                options.get(KafkaOptions.ANSWERS_TOPIC),
                options.get(KafkaOptions.SUMMARIES_TOPIC),
                options.get(KafkaOptions.ATTRIBUTIONS_TOPIC),
                options.get(KafkaOptions.DEAD_LETTER_TOPIC));
        builder.stream(
                        topics.all(),
                        Consumed.with(Serdes.String(), Serdes.ByteArray()).withName("engram-session-topics"))
                .process(new SessionViews(topics, changes), Named.as("engram-session-views"));
        return changes;
    }

    /**
     * An input event as the job sees it: kept with its coordinates set when its Kafka key is its session id (the job
     * dead-letters the others, so the view leaves them out too).
     */
    static EngramEvent keepEvent(String key, EngramEvent event, io.engram.schemas.SourceCoordinates at) {
        if (event.getSessionId() == null
                || event.getSessionId().isBlank()
                || !event.getSessionId().equals(key)) {
            return null;
        }
        event.setSource(at);
        return event;
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
        p.putAll(options.kafkaProperties()); // SASL, TLS, ... (engram.kafka.properties.*); Engram's settings below win
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, options.get(QueryOptions.APPLICATION_ID));
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, options.get(KafkaOptions.BOOTSTRAP_SERVERS));
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, options.get(KafkaOptions.REPLICATION_FACTOR));
        Path stateDir = options.get(JobOptions.DATA_DIR)
                .resolve("streams")
                .toAbsolutePath()
                .normalize();
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        p.put(StreamsConfig.DESERIALIZATION_EXCEPTION_HANDLER_CLASS_CONFIG, LogAndContinueExceptionHandler.class);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        return p;
    }
}
