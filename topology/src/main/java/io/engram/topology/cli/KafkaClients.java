package io.engram.topology.cli;

import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.util.Map;
import java.util.UUID;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** The CLI's Kafka clients: idempotent producers and read_committed consumers of byte arrays. */
final class KafkaClients {

    private KafkaClients() {}

    /** An admin client with the pass-through properties. */
    static org.apache.kafka.clients.admin.Admin admin(ResolvedOptions options) {
        return org.apache.kafka.clients.admin.Admin.create(KafkaOptions.clientProperties(options));
    }

    static KafkaProducer<byte[], byte[]> producer(ResolvedOptions options) {
        Map<String, Object> p = KafkaOptions.clientProperties(options);
        p.putAll(Map.of(
                ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                ProducerConfig.LINGER_MS_CONFIG, 5,
                ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000,
                ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000,
                ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000));
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    /** A consumer without a group (the caller assigns partitions), reading committed records only. */
    static KafkaConsumer<byte[], byte[]> readCommittedConsumer(ResolvedOptions options) {
        Map<String, Object> p = KafkaOptions.clientProperties(options);
        p.putAll(Map.of(
                ConsumerConfig.ISOLATION_LEVEL_CONFIG,
                "read_committed",
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG,
                false,
                ConsumerConfig.CLIENT_ID_CONFIG,
                "engram-cli-" + UUID.randomUUID()));
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }
}
