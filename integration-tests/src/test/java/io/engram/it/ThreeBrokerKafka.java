package io.engram.it;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import kafka.server.BrokerServer;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.test.KafkaClusterTestKit;
import org.apache.kafka.common.test.TestKitNodes;

/**
 * Three Kafka KRaft nodes in this JVM (Kafka's own {@link KafkaClusterTestKit}, each node broker and controller
 * combined, like docker/docker-compose.yml), with replication factor 3 and {@code min.insync.replicas} 2 as defaults for
 * every topic, internal ones included, so one broker may be down while producers with {@code acks=all} and
 * transactions go on.
 *
 * <p>{@link #stopBroker}/{@link #startBroker} stop and restart the broker half of one node (its controller keeps
 * running, so the quorum stays at three voters); the test kit keeps the node's listener port across the restart. Not
 * thread-safe; {@link #close()} shuts all nodes down.
 */
final class ThreeBrokerKafka implements AutoCloseable {

    private final KafkaClusterTestKit cluster;

    private ThreeBrokerKafka(KafkaClusterTestKit cluster) {
        this.cluster = cluster;
    }

    /** Formats three nodes under {@code dir} and starts them; returns once every broker is ready. */
    static ThreeBrokerKafka start(Path dir) throws Exception {
        TestKitNodes nodes = new TestKitNodes.Builder().setCombined(true).setNumBrokerNodes(3).setNumControllerNodes(3)
                .setBaseDirectory(dir).build();
        KafkaClusterTestKit.Builder builder = new KafkaClusterTestKit.Builder(nodes);
        Map.of("default.replication.factor", "3",
                "min.insync.replicas", "2",
                "offsets.topic.replication.factor", "3",
                "offsets.topic.num.partitions", "4",
                "transaction.state.log.replication.factor", "3",
                "transaction.state.log.min.isr", "2",
                "transaction.state.log.num.partitions", "4",
                "group.initial.rebalance.delay.ms", "0",
                "auto.create.topics.enable", "false",
                // a stopped broker leaves the ISR within seconds, so acks=all writes go on with the other two
                "replica.lag.time.max.ms", "5000")
                .forEach(builder::setConfigProp);
        KafkaClusterTestKit cluster = builder.build();
        try {
            cluster.format();
            cluster.startup();
            cluster.waitForReadyBrokers();
        } catch (Exception e) {
            cluster.close();
            throw e;
        }
        return new ThreeBrokerKafka(cluster);
    }

    /** All three brokers' client listeners, comma-separated. */
    String bootstrapServers() {
        return cluster.bootstrapServers();
    }

    List<Integer> brokerIds() {
        return new ArrayList<>(cluster.brokers().keySet());
    }

    /** Shuts the broker of node {@code id} down (controlled shutdown: its leaderships move first) and waits for it. */
    void stopBroker(int id) {
        BrokerServer broker = broker(id);
        broker.shutdown();
        broker.awaitShutdown();
    }

    /** Starts the broker of node {@code id} again, on its old data directory and port. */
    void startBroker(int id) {
        broker(id).startup();
    }

    /**
     * Whether every partition of {@code topics} has all three replicas in sync again (after {@link #startBroker}, the
     * restarted broker has caught up).
     */
    boolean fullyInSync(List<String> topics) {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers()))) {
            Map<String, TopicDescription> described = admin.describeTopics(topics).allTopicNames().get(10, TimeUnit.SECONDS);
            return described.values().stream().flatMap(d -> d.partitions().stream())
                    .mapToInt((TopicPartitionInfo p) -> p.isr().size()).allMatch(isr -> isr == 3);
        } catch (Exception e) {
            return false;
        }
    }

    /** The replication factor and min ISR of {@code topic}, as "rf=N min.insync.replicas=M", for the test's log. */
    String describe(String topic) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers()))) {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get(10, TimeUnit.SECONDS).get(topic);
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            String minIsr = admin.describeConfigs(List.of(res)).all().get(10, TimeUnit.SECONDS).get(res)
                    .get("min.insync.replicas").value();
            return "rf=%d min.insync.replicas=%s".formatted(d.partitions().get(0).replicas().size(), minIsr);
        }
    }

    private BrokerServer broker(int id) {
        BrokerServer broker = cluster.brokers().get(id);
        if (broker == null) {
            throw new IllegalArgumentException("no broker " + id + "; brokers are " + brokerIds());
        }
        return broker;
    }

    @Override
    public void close() throws Exception {
        cluster.close();
    }
}
