package io.engram.topology.cli;

import io.engram.topology.EngramJob;
import io.engram.topology.EngramSinks;
import io.engram.topology.EngramSources;
import io.engram.topology.JobOptions;
import io.engram.topology.KafkaOptions;
import io.engram.topology.RetainedCheckpoints;
import io.engram.topology.SessionStage;
import io.engram.topology.embedded.EmbeddedKafka;
import io.engram.topology.embedded.EmbeddedOptions;
import io.engram.topology.embedded.EngramTopics;
import io.engram.topology.options.ResolvedOptions;
import io.engram.topology.queries.EngramQueries;
import io.engram.topology.queries.QueryOptions;
import io.engram.topology.queries.QueryServer;
import io.engram.topology.queries.SessionChanges;
import java.io.IOException;
import java.net.URI;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram run}: everything in one process. Starts an in-process Kafka broker, creates Engram's topics, submits
 * the Flink job to a local MiniCluster (with the session stage of {@link CliContext#sessionStages()}), starts the Kafka
 * Streams query app and its HTTP endpoint, prints where each listens, and runs until stopped ({@link CliContext#stop()},
 * i.e. Ctrl-C). Closes in reverse order. A rerun with the same data directory restores the newest checkpoint the
 * previous run completed ({@link RetainedCheckpoints}), so every session keeps its memory across restarts.
 */
@Command(name = "run", description = "Run Engram embedded: Kafka broker, Flink job (local MiniCluster), query app.")
public final class RunCommand implements Callable<Integer> {

    private static final Logger LOG = LoggerFactory.getLogger(RunCommand.class);

    @ParentCommand
    EngramCli root;

    @picocli.CommandLine.Option(
            names = "--demo",
            description = "Stream a sample document into session 'demo', ask "
                    + "questions about it, print the answers with citations, then stop.")
    boolean demo;

    @Override
    public Integer call() throws Exception {
        CliContext ctx = root.context();
        ResolvedOptions configured = root.options(Map.of());
        SessionStage stage = ctx.sessionStages().create(configured); // before starting anything: fails fast
        try (Embedded running = Embedded.start(configured, stage)) {
            ctx.out().printf("engram is running%n");
            ctx.out()
                    .printf(
                            "  kafka:   %s (topics %s)%n",
                            running.kafka.bootstrapServers(), String.join(", ", EngramTopics.names(running.options)));
            ctx.out()
                    .printf(
                            "  flink:   job %s on a local MiniCluster, parallelism %d, checkpoints in %s%n",
                            running.job.getJobID(),
                            running.options.get(JobOptions.PARALLELISM),
                            EngramJob.checkpointDir(running.options));
            ctx.out()
                    .printf(
                            "  memory:  %s%n",
                            running.restoredFrom == null
                                    ? "new (no earlier checkpoint to restore)"
                                    : "restored from " + running.restoredFrom
                                            + " (every session's memory, Kafka offsets with it)");
            ctx.out()
                    .printf(
                            "  queries: %s (GET /sessions/{id}/answers/{queryId}, /sessions/{id}/summary, /health)%n",
                            running.queryUri());
            ctx.out()
                    .printf(
                            "  web:     %s/ (sessions; a session's page at /sessions/{id}, live)%n",
                            running.queryUri());
            ctx.out().flush();
            if (demo) {
                Demo.run(running.options, ctx.out(), ctx.err(), java.time.Duration.ofMinutes(5));
                return ExitCode.OK.code();
            }
            ctx.err().println("press Ctrl-C to stop");
            ctx.err().flush();
            ctx.stop().get();
            ctx.err().println("stopping");
        }
        return ExitCode.OK.code();
    }

    /** The running pieces of the embedded mode, closed in reverse order of start. */
    static final class Embedded implements AutoCloseable {
        final EmbeddedKafka kafka;
        final ResolvedOptions options;
        final JobClient job;
        final KafkaStreams streams;
        final QueryServer queries;
        /** The checkpoint the job resumed from, or null for a first run. */
        final java.nio.file.Path restoredFrom;

        private Embedded(
                EmbeddedKafka kafka,
                ResolvedOptions options,
                JobClient job,
                KafkaStreams streams,
                QueryServer queries,
                java.nio.file.Path restoredFrom) {
            this.restoredFrom = restoredFrom;
            this.kafka = kafka;
            this.options = options;
            this.job = job;
            this.streams = streams;
            this.queries = queries;
        }

        URI queryUri() {
            return queries.uri();
        }

        static Embedded start(ResolvedOptions configured, SessionStage stage) throws Exception {
            EmbeddedKafka kafka = EmbeddedKafka.start(
                    configured.get(JobOptions.DATA_DIR).resolve("kafka"),
                    configured.get(EmbeddedOptions.KAFKA_PORT),
                    Map.of());
            JobClient job = null;
            KafkaStreams streams = null;
            try {
                ResolvedOptions options =
                        configured.with(Map.of(KafkaOptions.BOOTSTRAP_SERVERS.key(), kafka.bootstrapServers()));
                try (Admin admin =
                        Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers()))) {
                    List<String> created = EngramTopics.createMissing(admin, options);
                    LOG.info("created topics {}", created);
                    EngramTopics.requireSamePartitions(admin, options);
                }
                // a rerun resumes from the last checkpoint the previous run completed (retained when it was stopped
                // or killed): the sessions' memory and the source's offsets come back together
                org.apache.flink.configuration.Configuration conf = EngramJob.flinkConfiguration(options);
                java.nio.file.Path restoredFrom = RetainedCheckpoints.latest(EngramJob.checkpointDir(options))
                        .orElse(null);
                if (restoredFrom != null) {
                    conf.set(
                            org.apache.flink.configuration.StateRecoveryOptions.SAVEPOINT_PATH,
                            restoredFrom.toUri().toString());
                    LOG.info("resuming from checkpoint {}", restoredFrom);
                }
                StreamExecutionEnvironment env =
                        StreamExecutionEnvironment.createLocalEnvironment(options.get(JobOptions.PARALLELISM), conf);
                EngramJob.build(env, EngramSources.kafka(options), EngramSinks.kafka(options), options, stage);
                job = env.executeAsync("engram");

                StreamsBuilder builder = new StreamsBuilder();
                SessionChanges changes = EngramQueries.build(builder, options);
                streams = new KafkaStreams(builder.build(), EngramQueries.streamsConfig(options));
                streams.start();
                QueryServer server;
                try {
                    server = new QueryServer(
                            streams,
                            changes,
                            options.get(QueryOptions.HTTP_HOST),
                            options.get(QueryOptions.HTTP_PORT),
                            options.find(QueryOptions.AUTH_TOKEN).orElse(null),
                            options.get(QueryOptions.MAX_CONNECTIONS));
                } catch (IllegalArgumentException e) {
                    throw new io.engram.topology.options.ConfigException(e.getMessage());
                } catch (IOException e) {
                    throw new CliException(
                            ExitCode.UNAVAILABLE,
                            "cannot serve queries on %s:%d: %s"
                                    .formatted(
                                            options.get(QueryOptions.HTTP_HOST),
                                            options.get(QueryOptions.HTTP_PORT),
                                            e.getMessage()),
                            e);
                }
                return new Embedded(kafka, options, job, streams, server, restoredFrom);
            } catch (Exception | Error e) {
                closeQuietly(streams, job, kafka);
                throw e;
            }
        }

        @Override
        public void close() {
            queries.close();
            closeQuietly(streams, job, kafka);
        }

        /** Order matters: the query app and the job are clients of the broker, so the broker goes last. */
        private static void closeQuietly(KafkaStreams streams, JobClient job, EmbeddedKafka kafka) {
            if (streams != null) {
                streams.close(java.time.Duration.ofSeconds(10));
            }
            if (job != null) {
                try {
                    job.cancel().get(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                    LOG.warn("cancelling Flink job {} failed: {}", job.getJobID(), e.toString());
                }
            }
            kafka.close();
        }
    }
}
