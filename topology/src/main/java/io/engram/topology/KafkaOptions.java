package io.engram.topology;

import io.engram.topology.options.Option;
import java.time.Duration;

/** Where Engram's Kafka is and what it names there. Topic names, group ids and transactional prefixes live only here. */
public final class KafkaOptions {

    private static final String NAME = "[A-Za-z0-9._-]+";

    public static final Option<String> BOOTSTRAP_SERVERS = Option.stringKey("engram.kafka.bootstrap-servers")
            .defaultValue("localhost:9092")
            .check(s -> !s.isBlank(), "host:port[,host:port...]")
            .description("Kafka brokers to connect to. The embedded broker of 'engram run' listens on "
                    + "localhost:<engram.embedded.kafka-port>, so the default reaches it.");

    public static final Option<String> INPUT_TOPIC = Option.stringKey("engram.kafka.topic.input")
            .defaultValue("engram-events")
            .check(s -> s.matches(NAME), "a Kafka topic name")
            .description("Topic of EngramEvents (content, queries, control), keyed by session id.");

    public static final Option<String> ANSWERS_TOPIC = Option.stringKey("engram.kafka.topic.answers")
            .defaultValue("engram-answers")
            .check(s -> s.matches(NAME), "a Kafka topic name")
            .description("Topic the job writes Answers to (exactly once), keyed by session id.");

    public static final Option<String> SUMMARIES_TOPIC = Option.stringKey("engram.kafka.topic.summaries")
            .defaultValue("engram-summaries")
            .check(s -> s.matches(NAME), "a Kafka topic name")
            .description("Topic the job writes Summaries to (exactly once), keyed by session id.");

    public static final Option<String> ATTRIBUTIONS_TOPIC = Option.stringKey("engram.kafka.topic.attributions")
            .defaultValue("engram-attributions")
            .check(s -> s.matches(NAME), "a Kafka topic name")
            .description("Topic the job writes Attributions to (exactly once), keyed by session id.");

    public static final Option<String> DEAD_LETTER_TOPIC = Option.stringKey("engram.kafka.topic.dead-letters")
            .defaultValue("engram-dead-letters")
            .check(s -> s.matches(NAME), "a Kafka topic name")
            .description("Topic of DeadLetters: every input record the job refused, with reason and coordinates.");

    public static final Option<Integer> PARTITIONS = Option.intKey("engram.kafka.topic.partitions")
            .defaultValue(4)
            .check(n -> n > 0, "> 0")
            .description("Partitions of the topics Engram creates (engram run, engram topics create). Sessions spread "
                    + "over them by key.");

    public static final Option<Integer> REPLICATION_FACTOR = Option.intKey("engram.kafka.topic.replication-factor")
            .defaultValue(1)
            .check(n -> n > 0 && n <= Short.MAX_VALUE, "1..32767")
            .description("Replication factor of the topics Engram creates and of Kafka Streams' internal topics.");

    public static final Option<String> GROUP_ID = Option.stringKey("engram.kafka.group-id")
            .defaultValue("engram-job")
            .check(s -> s.matches(NAME), "a consumer group id")
            .description("Consumer group of the Flink job's Kafka source (offsets are committed on checkpoints).");

    public static final Option<String> TRANSACTIONAL_ID_PREFIX = Option.stringKey(
                    "engram.kafka.transactional-id-prefix")
            .defaultValue("engram")
            .check(s -> s.matches(NAME), "letters, digits, '.', '_' or '-'")
            .description("Prefix of the exactly-once sinks' transactional ids (one sink appends -answers, "
                    + "-summaries, ...). Must be unique per job on a cluster and stable across restarts.");

    public static final Option<Duration> TRANSACTION_TIMEOUT = Option.durationKey("engram.kafka.transaction-timeout")
            .defaultValue(Duration.ofMinutes(10))
            .check(d -> d.toMillis() > 0 && d.compareTo(Duration.ofMinutes(15)) <= 0, "> 0 and <= 15min")
            .description("transaction.timeout.ms of the exactly-once sinks. Must not exceed the broker's "
                    + "transaction.max.timeout.ms (15min by default) and should exceed the checkpoint interval "
                    + "plus the longest expected checkpoint.");

    /**
     * What every Kafka client of Engram starts from: the bootstrap servers and the properties passed through under
     * {@code engram.kafka.properties.*} (SASL, TLS, ...). Each client then sets what Engram relies on (isolation,
     * acks, idempotence, transactions) over them, so pass-through cannot weaken exactly-once.
     */
    public static java.util.Map<String, Object> clientProperties(io.engram.topology.options.ResolvedOptions options) {
        java.util.Map<String, Object> p = new java.util.HashMap<>(options.kafkaProperties());
        p.put("bootstrap.servers", options.get(BOOTSTRAP_SERVERS));
        return p;
    }

    /** {@link #clientProperties} as {@link java.util.Properties}. */
    public static java.util.Properties clientPropertiesObject(io.engram.topology.options.ResolvedOptions options) {
        java.util.Properties p = new java.util.Properties();
        p.putAll(clientProperties(options));
        return p;
    }

    private KafkaOptions() {}
}
