package io.engram.it;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.utils.Time;
import org.apache.kafka.metadata.storage.Formatter;
import org.apache.kafka.server.common.MetadataVersion;

/**
 * Three Kafka KRaft nodes in this JVM, each broker and controller combined with a static quorum of the three (like
 * docker/docker-compose.yml), built the way {@code EmbeddedKafka} builds its one node ({@link Formatter},
 * {@link KafkaRaftServer}, production metadata version). Replication factor 3 and {@code min.insync.replicas} 2 are the
 * defaults of every topic, internal ones included, so one node may be down while producers with {@code acks=all} and
 * transactions go on.
 *
 * <p>{@link #stopBroker} stops a whole node (broker and controller) without controlled shutdown, so that the others see
 * it as a crash: the controller fences it after {@code broker.session.timeout.ms}. {@link #startBroker} starts it again
 * on its data directory and ports. Kafka's {@code KafkaClusterTestKit} was tried first: under the load of three Flink
 * JVMs starting on two cores its dynamic-quorum raft thread failed fatally ("Received unexpected invalid request error"
 * on an UpdateVoter response), and a controlled broker shutdown waited for an approval that never came. Not
 * thread-safe; {@link #close()} shuts all nodes down.
 */
final class ThreeBrokerKafka implements AutoCloseable {

    private static final String HOST = "127.0.0.1";
    private static final int NODES = 3;

    private final Path dir;
    private final String clusterId = Uuid.randomUuid().toString();
    private final int[] clientPorts = new int[NODES];
    private final int[] controllerPorts = new int[NODES];
    private final KafkaRaftServer[] servers = new KafkaRaftServer[NODES];

    private ThreeBrokerKafka(Path dir) {
        this.dir = dir;
        for (int i = 0; i < NODES; i++) {
            clientPorts[i] = FlinkProcessCluster.freePort();
            controllerPorts[i] = FlinkProcessCluster.freePort();
        }
    }

    /** Formats three nodes under {@code dir} and starts them; returns once every broker answers. */
    static ThreeBrokerKafka start(Path dir) throws Exception {
        ThreeBrokerKafka kafka = new ThreeBrokerKafka(dir);
        try {
            for (int i = 0; i < NODES; i++) {
                kafka.format(i);
            }
            // a broker's startup waits for the metadata quorum, which needs two controllers: start them together
            List<CompletableFuture<Void>> starts = new ArrayList<>();
            for (int i = 0; i < NODES; i++) {
                int node = i;
                starts.add(CompletableFuture.runAsync(() -> kafka.startBroker(node)));
            }
            CompletableFuture.allOf(starts.toArray(CompletableFuture[]::new)).get(120, TimeUnit.SECONDS);
            kafka.awaitBrokers(NODES, Duration.ofSeconds(60));
        } catch (Exception e) {
            kafka.close();
            throw e;
        }
        return kafka;
    }

    private Properties config(int node) {
        Properties p = new Properties();
        p.put("process.roles", "broker,controller");
        p.put("node.id", String.valueOf(node));
        p.put(
                "listeners",
                "PLAINTEXT://%s:%d,CONTROLLER://%s:%d".formatted(HOST, clientPorts[node], HOST, controllerPorts[node]));
        p.put("advertised.listeners", "PLAINTEXT://%s:%d".formatted(HOST, clientPorts[node]));
        p.put("controller.listener.names", "CONTROLLER");
        p.put("inter.broker.listener.name", "PLAINTEXT");
        p.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
        p.put(
                "controller.quorum.voters",
                IntStream.range(0, NODES)
                        .mapToObj(i -> "%d@%s:%d".formatted(i, HOST, controllerPorts[i]))
                        .collect(Collectors.joining(",")));
        p.put("log.dirs", logDir(node).toString());
        p.put("default.replication.factor", "3");
        p.put("min.insync.replicas", "2");
        p.put("offsets.topic.replication.factor", "3");
        p.put("offsets.topic.num.partitions", "4");
        p.put("transaction.state.log.replication.factor", "3");
        p.put("transaction.state.log.min.isr", "2");
        p.put("transaction.state.log.num.partitions", "4");
        p.put("share.coordinator.state.topic.replication.factor", "3");
        p.put("share.coordinator.state.topic.min.isr", "2");
        p.put("group.initial.rebalance.delay.ms", "0");
        p.put("auto.create.topics.enable", "false");
        p.put("num.partitions", "1");
        // a stopped node is a crash to the others: fenced within seconds, out of the ISR within seconds
        p.put("controlled.shutdown.enable", "false");
        p.put("broker.heartbeat.interval.ms", "500");
        p.put("broker.session.timeout.ms", "3000");
        p.put("replica.lag.time.max.ms", "5000");
        return p;
    }

    private Path logDir(int node) {
        return dir.resolve("node-" + node).toAbsolutePath();
    }

    private void format(int node) throws Exception {
        Files.createDirectories(logDir(node));
        Formatter formatter = new Formatter()
                .setClusterId(clusterId)
                .setNodeId(node)
                .setControllerListenerName("CONTROLLER")
                .setMetadataLogDirectory(logDir(node).toString())
                .addDirectory(logDir(node).toString())
                .setReleaseVersion(MetadataVersion.LATEST_PRODUCTION)
                .setPrintStream(new PrintStream(OutputStream.nullOutputStream()));
        formatter.run();
    }

    private void awaitBrokers(int n, Duration timeout) throws InterruptedException {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers()))) {
            boolean ok = KafkaBroker.await(
                    () -> {
                        try {
                            return admin.describeCluster()
                                            .nodes()
                                            .get(5, TimeUnit.SECONDS)
                                            .size()
                                    >= n;
                        } catch (Exception e) {
                            return false;
                        }
                    },
                    timeout);
            if (!ok) {
                throw new IllegalStateException(
                        "%d Kafka brokers on %s not up within %s".formatted(n, bootstrapServers(), timeout));
            }
        }
    }

    /** All three brokers' client listeners, comma-separated. */
    String bootstrapServers() {
        return IntStream.of(clientPorts).mapToObj(p -> HOST + ":" + p).collect(Collectors.joining(","));
    }

    List<Integer> brokerIds() {
        return IntStream.range(0, NODES).boxed().toList();
    }

    /** Stops node {@code id} (broker and controller, no controlled shutdown) and waits until it has stopped. */
    void stopBroker(int id) {
        KafkaRaftServer server = servers[id];
        if (server == null) {
            throw new IllegalStateException("node " + id + " is not running");
        }
        servers[id] = null;
        server.shutdown();
        server.awaitShutdown();
    }

    /** Starts node {@code id} on its data directory and ports (again, after {@link #stopBroker}). */
    void startBroker(int id) {
        if (servers[id] != null) {
            throw new IllegalStateException("node " + id + " is already running");
        }
        KafkaRaftServer server = new KafkaRaftServer(KafkaConfig.fromProps(config(id), false), Time.SYSTEM);
        server.startup();
        servers[id] = server;
    }

    /**
     * Whether every partition of {@code topics} has all three replicas in sync again (after {@link #startBroker}, the
     * restarted broker has caught up).
     */
    boolean fullyInSync(List<String> topics) {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers()))) {
            Map<String, TopicDescription> described =
                    admin.describeTopics(topics).allTopicNames().get(10, TimeUnit.SECONDS);
            return described.values().stream()
                    .flatMap(d -> d.partitions().stream())
                    .mapToInt((TopicPartitionInfo p) -> p.isr().size())
                    .allMatch(isr -> isr == 3);
        } catch (Exception e) {
            return false;
        }
    }

    /**
     * The replication factor and min ISR of {@code topic}, as "rf=N min.insync.replicas=M", for the test's log. A topic
     * just created may not have reached every broker's metadata yet (the broker asked answers UnknownTopicOrPartition):
     * that is retried for up to 30 s.
     */
    String describe(String topic) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try {
                return describeOnce(topic);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof UnknownTopicOrPartitionException) || System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(200);
            }
        }
    }

    private String describeOnce(String topic) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers()))) {
            TopicDescription d = admin.describeTopics(List.of(topic))
                    .allTopicNames()
                    .get(10, TimeUnit.SECONDS)
                    .get(topic);
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            String minIsr = admin.describeConfigs(List.of(res))
                    .all()
                    .get(10, TimeUnit.SECONDS)
                    .get(res)
                    .get("min.insync.replicas")
                    .value();
            return "rf=%d min.insync.replicas=%s"
                    .formatted(d.partitions().get(0).replicas().size(), minIsr);
        }
    }

    @Override
    public void close() {
        for (int i = 0; i < NODES; i++) {
            if (servers[i] != null) {
                stopBroker(i);
            }
        }
    }
}
