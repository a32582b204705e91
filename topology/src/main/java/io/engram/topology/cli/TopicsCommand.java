package io.engram.topology.cli;

import io.engram.topology.KafkaOptions;
import io.engram.topology.embedded.EngramTopics;
import io.engram.topology.options.ResolvedOptions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.kafka.clients.admin.Admin;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

/** {@code engram topics}: Engram's Kafka topics on a cluster that {@code engram run} did not start. */
@Command(
        name = "topics",
        description = "Manage Engram's Kafka topics.",
        subcommands = TopicsCommand.CreateCommand.class)
public final class TopicsCommand implements Callable<Integer> {

    @ParentCommand
    EngramCli root;

    @Override
    public Integer call() {
        throw new CliException(ExitCode.INVALID_INPUT, "name a topics command: engram topics create");
    }

    /**
     * {@code engram topics create}: creates those of the five topics (input, answers, summaries, attributions, dead
     * letters; names from the options) that do not exist, with {@code engram.kafka.topic.partitions} partitions and
     * {@code engram.kafka.topic.replication-factor} replicas; existing topics are left as they are. Prints each topic
     * with {@code created} or {@code exists}.
     */
    @Command(
            name = "create",
            description = "Create Engram's topics that do not exist yet (partitions and replication "
                    + "from engram.kafka.topic.partitions and engram.kafka.topic.replication-factor).")
    public static final class CreateCommand implements Callable<Integer> {

        @ParentCommand
        TopicsCommand topics;

        @Override
        public Integer call() {
            CliContext ctx = topics.root.context();
            ResolvedOptions options = topics.root.options(Map.of());
            String servers = options.get(KafkaOptions.BOOTSTRAP_SERVERS);
            List<String> created;
            try (Admin admin = KafkaClients.admin(options)) {
                created = EngramTopics.createMissing(admin, options);
            } catch (IllegalStateException e) {
                throw new CliException(ExitCode.UNAVAILABLE, e.getMessage(), e);
            }
            for (String name : EngramTopics.names(options)) {
                ctx.out().printf("%s %s%n", name, created.contains(name) ? "created" : "exists");
            }
            ctx.err()
                    .printf(
                            "topics on %s: %d created (%d partitions, replication factor %d)%n",
                            servers,
                            created.size(),
                            options.get(KafkaOptions.PARTITIONS),
                            options.get(KafkaOptions.REPLICATION_FACTOR));
            ctx.out().flush();
            ctx.err().flush();
            return ExitCode.OK.code();
        }
    }
}
