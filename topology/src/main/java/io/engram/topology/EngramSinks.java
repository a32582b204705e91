package io.engram.topology;

import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.Summary;
import io.engram.topology.options.ResolvedOptions;
import java.util.Objects;
import org.apache.avro.specific.SpecificRecord;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.util.function.SerializableFunction;
import org.apache.kafka.clients.producer.ProducerConfig;

/** The job's outputs, one sink per output kind. */
public record EngramSinks(
        Sink<Answer> answers, Sink<Summary> summaries, Sink<Attribution> attributions, Sink<DeadLetter> deadLetters) {

    public EngramSinks {
        Objects.requireNonNull(answers, "answers sink");
        Objects.requireNonNull(summaries, "summaries sink");
        Objects.requireNonNull(attributions, "attributions sink");
        Objects.requireNonNull(deadLetters, "deadLetters sink");
    }

    /**
     * The production sinks: {@code EXACTLY_ONCE} Kafka sinks to the four output topics, transactional ids
     * {@code <engram.kafka.transactional-id-prefix>-<kind>}, {@code transaction.timeout.ms} from {@link
     * KafkaOptions#TRANSACTION_TIMEOUT}. Records are keyed by session id.
     */
    public static EngramSinks kafka(ResolvedOptions options) {
        return new EngramSinks(
                sink(
                        options,
                        KafkaOptions.ANSWERS_TOPIC.key(),
                        options.get(KafkaOptions.ANSWERS_TOPIC),
                        "answers",
                        Answer.class,
                        Answer::getSessionId),
                sink(
                        options,
                        KafkaOptions.SUMMARIES_TOPIC.key(),
                        options.get(KafkaOptions.SUMMARIES_TOPIC),
                        "summaries",
                        Summary.class,
                        Summary::getSessionId),
                sink(
                        options,
                        KafkaOptions.ATTRIBUTIONS_TOPIC.key(),
                        options.get(KafkaOptions.ATTRIBUTIONS_TOPIC),
                        "attributions",
                        Attribution.class,
                        Attribution::getSessionId),
                sink(
                        options,
                        KafkaOptions.DEAD_LETTER_TOPIC.key(),
                        options.get(KafkaOptions.DEAD_LETTER_TOPIC),
                        "dead-letters",
                        DeadLetter.class,
                        DeadLetter::getSessionId));
    }

    private static <T extends SpecificRecord> KafkaSink<T> sink(
            ResolvedOptions options,
            String optionKey,
            String topic,
            String kind,
            Class<T> type,
            SerializableFunction<T, String> sessionId) {
        return KafkaSink.<T>builder()
                .setBootstrapServers(options.get(KafkaOptions.BOOTSTRAP_SERVERS))
                .setKafkaProducerConfig(EngramSources.passThrough(options))
                .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                .setTransactionalIdPrefix(options.get(KafkaOptions.TRANSACTIONAL_ID_PREFIX) + "-" + kind)
                .setProperty(
                        ProducerConfig.TRANSACTION_TIMEOUT_CONFIG,
                        String.valueOf(
                                options.get(KafkaOptions.TRANSACTION_TIMEOUT).toMillis()))
                .setRecordSerializer(new AvroRecordSerializer<>(topic, type, sessionId))
                .build();
    }
}
