package io.engram.topology.cli;

import io.engram.topology.EngramJob;
import io.engram.topology.EngramSinks;
import io.engram.topology.EngramSources;
import io.engram.topology.JobOptions;
import io.engram.topology.KafkaOptions;
import io.engram.topology.SessionStage;
import io.engram.topology.options.ResolvedOptions;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram submit}: builds the same job as {@code run} (sources, decoder, session stage, exactly-once sinks,
 * RocksDB checkpoints) and submits it to a running Flink session cluster through its REST endpoint, with the engram jar
 * as the job's code. Kafka bootstrap servers, topics, model folder and engine options come from the usual options;
 * the model folder must exist on every task manager. {@code --from-savepoint} restores the job from a savepoint that
 * {@code engram savepoint} took (operator uids are stable, see {@link EngramJob}).
 */
@Command(
        name = "submit",
        description = "Submit the Engram job to a running Flink cluster over its REST API; prints the job id.")
public final class SubmitCommand implements Callable<Integer> {

    @ParentCommand
    EngramCli root;

    @Mixin
    JobManagerFlag flag;

    @Option(
            names = "--jar",
            paramLabel = "FILE",
            description = "The engram jar to ship as the job's code (default: the jar this command runs from).")
    Path jar;

    @Option(
            names = "--from-savepoint",
            paramLabel = "PATH",
            description = "Start from this savepoint (or retained checkpoint), as engram savepoint printed it: session "
                    + "memory, pending queries and Kafka offsets resume from there.")
    String fromSavepoint;

    @Option(
            names = "--allow-non-restored-state",
            description =
                    "With --from-savepoint: start even if the savepoint holds state of operators the job no longer "
                            + "has (that state is dropped).")
    boolean allowNonRestoredState;

    @Option(
            names = "--discard-memory",
            description =
                    "Without --from-savepoint: submit even though the job's consumer group has committed offsets. "
                            + "The job starts there with empty memory; sessions from before answer UNKNOWN_SESSION.")
    boolean discardMemory;

    @Option(
            names = "--job-name",
            defaultValue = "engram",
            description = "Name of the job on the cluster (default ${DEFAULT-VALUE}).")
    String jobName;

    @Override
    public Integer call() throws Exception {
        CliContext ctx = root.context();
        ResolvedOptions options = root.options(flag.asOptions());
        URI jobManager = FlinkRest.address(options);
        if (allowNonRestoredState && fromSavepoint == null) {
            throw new CliException(ExitCode.INVALID_INPUT, "--allow-non-restored-state needs --from-savepoint PATH");
        }
        if (fromSavepoint != null && fromSavepoint.isBlank()) {
            throw new CliException(
                    ExitCode.INVALID_INPUT, "--from-savepoint is empty; give the path engram savepoint printed");
        }
        Path code = jar != null ? jar : ownJar();
        if (!Files.isRegularFile(code)) {
            throw new CliException(ExitCode.INVALID_INPUT, "the job's jar " + code + " does not exist");
        }
        if (fromSavepoint == null && !discardMemory) {
            refuseIfTheGroupHasCommittedOffsets(options);
        }
        SessionStage stage = ctx.sessionStages().create(options);
        Configuration conf = EngramJob.flinkConfiguration(options);
        if (fromSavepoint != null) {
            conf.set(StateRecoveryOptions.SAVEPOINT_PATH, fromSavepoint.strip());
            conf.set(StateRecoveryOptions.SAVEPOINT_IGNORE_UNCLAIMED_STATE, allowNonRestoredState);
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createRemoteEnvironment(
                jobManager.getHost(),
                jobManager.getPort(),
                conf,
                code.toAbsolutePath().toString());
        env.setParallelism(options.get(JobOptions.PARALLELISM));
        EngramJob.build(env, EngramSources.kafka(options), EngramSinks.kafka(options), options, stage);
        JobClient job;
        try {
            job = env.executeAsync(jobName);
        } catch (Exception e) {
            throw new CliException(
                    ExitCode.UNAVAILABLE, "submitting to %s failed: %s".formatted(jobManager, e.getMessage()), e);
        }
        ctx.err()
                .printf(
                        "submitted job '%s' to %s (Kafka %s, input topic %s%s)%n",
                        jobName,
                        jobManager,
                        options.get(KafkaOptions.BOOTSTRAP_SERVERS),
                        options.get(KafkaOptions.INPUT_TOPIC),
                        fromSavepoint == null ? "" : ", restored from " + fromSavepoint.strip());
        ctx.out().println(job.getJobID());
        ctx.out().flush();
        return ExitCode.OK.code();
    }

    /**
     * A job submitted without state starts at the group's committed offsets with empty memory: every session from
     * before would be forgotten while the topics say it was read. Refuses unless the user chose that.
     */
    private static void refuseIfTheGroupHasCommittedOffsets(ResolvedOptions options) {
        String group = options.get(KafkaOptions.GROUP_ID);
        String input = options.get(KafkaOptions.INPUT_TOPIC);
        java.util.Map<org.apache.kafka.common.TopicPartition, org.apache.kafka.clients.consumer.OffsetAndMetadata>
                offsets;
        try (org.apache.kafka.clients.admin.Admin admin = KafkaClients.admin(options)) {
            offsets = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata()
                    .get(30, java.util.concurrent.TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new CliException(
                    ExitCode.UNAVAILABLE,
                    "cannot read the committed offsets of consumer group '%s' on %s: %s"
                            .formatted(group, options.get(KafkaOptions.BOOTSTRAP_SERVERS), e.getMessage()),
                    e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException(ExitCode.INTERNAL, "interrupted", e);
        }
        long committed = offsets.entrySet().stream()
                .filter(e -> e.getKey().topic().equals(input) && e.getValue() != null)
                .count();
        if (committed > 0) {
            throw new CliException(
                    ExitCode.INVALID_INPUT,
                    ("consumer group '%s' has committed offsets on %d partition(s) of %s: "
                                    + "an earlier job read up to them, and its sessions' memory is in that job's savepoint or last retained "
                                    + "checkpoint (under %s). Restore it with --from-savepoint PATH (engram savepoint JOB_ID --stop prints "
                                    + "one), or pass --discard-memory to start empty at those offsets.")
                            .formatted(group, committed, input, EngramJob.checkpointDir(options)));
        }
    }

    private static Path ownJar() {
        try {
            Path p = Path.of(SubmitCommand.class
                    .getProtectionDomain()
                    .getCodeSource()
                    .getLocation()
                    .toURI());
            if (Files.isRegularFile(p) && p.toString().endsWith(".jar")) {
                return p;
            }
            throw new CliException(
                    ExitCode.INVALID_INPUT,
                    "not running from the engram jar (" + p + "); pass --jar topology/target/engram.jar");
        } catch (java.net.URISyntaxException e) {
            throw new CliException(ExitCode.INTERNAL, "cannot locate the engram jar: " + e.getMessage(), e);
        }
    }
}
