package io.engram.topology.embedded;

import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;

/** Creates Engram's topics (those that do not exist yet) with the configured partitions and replication. */
public final class EngramTopics {

    private EngramTopics() {}

    /** The five topic names from the options: input, answers, summaries, attributions, dead letters. */
    public static List<String> names(ResolvedOptions options) {
        return List.of(
                options.get(KafkaOptions.INPUT_TOPIC),
                options.get(KafkaOptions.ANSWERS_TOPIC),
                options.get(KafkaOptions.SUMMARIES_TOPIC),
                options.get(KafkaOptions.ATTRIBUTIONS_TOPIC),
                options.get(KafkaOptions.DEAD_LETTER_TOPIC));
    }

    /**
     * @return the topics that were created (existing ones are left as they are)
     * @throws IllegalStateException naming the bootstrap servers when the cluster cannot be reached in 30 s
     */
    public static List<String> createMissing(Admin admin, ResolvedOptions options) {
        try {
            Set<String> existing = admin.listTopics().names().get(30, TimeUnit.SECONDS);
            List<NewTopic> toCreate = new ArrayList<>();
            for (String name : names(options)) {
                if (!existing.contains(name)) {
                    toCreate.add(new NewTopic(
                            name,
                            options.get(KafkaOptions.PARTITIONS),
                            options.get(KafkaOptions.REPLICATION_FACTOR).shortValue()));
                }
            }
            admin.createTopics(toCreate).all().get(30, TimeUnit.SECONDS);
            return toCreate.stream().map(NewTopic::name).toList();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while creating topics", e);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException(
                    "cannot create Engram's topics on " + options.get(KafkaOptions.BOOTSTRAP_SERVERS) + ": "
                            + e.getMessage(),
                    e);
        }
    }

    /**
     * Checks that the five topics have one partition count: the query app reads them in one processor per partition, so
     * a session's input events and outputs must sit on the same partition number (all are keyed by session id).
     *
     * @throws io.engram.topology.options.ConfigException naming each topic's count when they differ
     */
    public static void requireSamePartitions(Admin admin, ResolvedOptions options) {
        try {
            java.util.Map<String, org.apache.kafka.clients.admin.TopicDescription> d = describe(admin, names(options));
            java.util.Map<String, Integer> counts = new java.util.TreeMap<>();
            d.forEach((name, t) -> counts.put(name, t.partitions().size()));
            if (new java.util.HashSet<>(counts.values()).size() > 1) {
                throw new io.engram.topology.options.ConfigException(
                        "Engram's topics need one partition count (the query "
                                + "app keeps a session's events and outputs together by partition), but they have "
                                + counts
                                + ": add partitions to the smaller ones (kafka-topics --alter --partitions N) or use new topic names");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while describing topics", e);
        } catch (ExecutionException | TimeoutException e) {
            throw new IllegalStateException(
                    "cannot describe Engram's topics on " + options.get(KafkaOptions.BOOTSTRAP_SERVERS) + ": "
                            + e.getMessage(),
                    e);
        }
    }

    /**
     * The topics' descriptions; a broker that has just started or just created them may not know them yet (it answers
     * UnknownTopicOrPartition until its metadata catches up), so that answer is retried for up to 30 s.
     */
    private static java.util.Map<String, org.apache.kafka.clients.admin.TopicDescription> describe(
            Admin admin, java.util.Collection<String> topics)
            throws InterruptedException, ExecutionException, TimeoutException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try {
                return admin.describeTopics(topics).allTopicNames().get(30, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof org.apache.kafka.common.errors.UnknownTopicOrPartitionException)
                        || System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(200);
            }
        }
    }
}
