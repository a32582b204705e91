package io.engram.it;

import static io.engram.it.AnswerWorkload.ms;
import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.Answer;
import io.engram.schemas.EngramSchemas;
import io.engram.topology.EngineSessionStage;
import io.engram.topology.EngramJob;
import io.engram.topology.EngramOptions;
import io.engram.topology.EngramSinks;
import io.engram.topology.EngramSources;
import io.engram.topology.SessionStage;
import io.engram.topology.embedded.EngramTopics;
import io.engram.topology.options.ResolvedOptions;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The embedded counterpart of {@link MultiProcessClusterIT}'s latency figures: the same {@link AnswerWorkload}
 * (sessions, documents, query pacing, model and engine options) on the embedded default, all in this JVM: one
 * in-process KRaft broker, the job started as {@code engram run} starts it (the production
 * {@link EngineSessionStage}, {@link EngramJob#build}) on a local MiniCluster with EmbeddedRocksDB and exactly-once
 * checkpoints every second. The Kafka Streams query app that {@code engram run} also starts is left out, as the
 * cluster IT leaves it out.
 *
 * <p>Asserted: every query is answered exactly once on the answers topic (read_committed), by its own session.
 * Measured and logged, not asserted: start (MiniCluster and job) to first answer, answer latency p50/p99/max per phase.
 */
class EmbeddedLatencyIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    private static final AnswerWorkload.Report REPORT = new AnswerWorkload.Report("EmbeddedLatencyIT");
    /** How long queries stream in at the workload's pacing (one per 200 ms). */
    private static final Duration STREAM = Duration.ofSeconds(10);

    private static final String STREAMED = "streamed";
    /**
     * One query per session after the stream: once their answers are committed, so is every earlier answer of each
     * sink subtask (there are sessions on every subtask), duplicates from a replay included.
     */
    private static final String CLOSING = "closing";

    @Test
    void everyQueryAnsweredOnceWhileLatencyIsMeasured() throws Exception {
        EngramSchemas.trustEngramClasses();
        long began = System.nanoTime();
        Path root = KAFKA.newDir("embedded-latency");
        String run = UUID.randomUUID().toString().substring(0, 8);
        AnswerWorkload.Plan plan = AnswerWorkload.plan(
                run,
                root,
                KAFKA.bootstrapServers(),
                root.resolve("checkpoints").toUri().toString());
        ResolvedOptions options = EngramOptions.of(plan.settings());
        SessionStage stage = EngineSessionStage.from(options);
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, KAFKA.bootstrapServers()))) {
            REPORT.line("topics created: {}", EngramTopics.createMissing(admin, options));
        }

        List<String> sessions = AnswerWorkload.sessionsOnEverySubtask(run);
        JobClient job = null;
        try (KafkaProducer<byte[], byte[]> producer = AnswerWorkload.producer(KAFKA.bootstrapServers());
                AnswerCollector answers = AnswerCollector.start(KAFKA.bootstrapServers(), plan.answersTopic())) {
            QueryLog queries = new QueryLog(producer, plan.inputTopic());
            // content and the first questions wait in the input topic, so the first answer measures the job's start
            AnswerWorkload.produceStart(producer, plan.inputTopic(), sessions, queries);

            long started = System.nanoTime();
            StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(
                    AnswerWorkload.PARALLELISM, EngramJob.flinkConfiguration(options));
            EngramJob.build(env, EngramSources.kafka(options), EngramSinks.kafka(options), options, stage);
            job = env.executeAsync("embedded-latency-it");
            JobClient running = job;
            assertThat(KafkaBroker.await(() -> status(running) == JobStatus.RUNNING, Duration.ofSeconds(60)))
                    .as("job %s RUNNING; it is %s", job.getJobID(), status(job))
                    .isTrue();
            REPORT.line(
                    "started job {} on a local MiniCluster; RUNNING after {} ms",
                    job.getJobID(),
                    ms(System.nanoTime() - started));

            answers.awaitAll(queries.ids(), Duration.ofSeconds(90), "the first questions");
            REPORT.line(
                    "METRIC start-to-first-answer {} ms (MiniCluster and job start included; all {} first answers "
                            + "after {} ms)",
                    ms(answers.firstSeenNanos() - started),
                    queries.ids().size(),
                    ms(System.nanoTime() - started));

            queries.streamFor(STREAM, sessions, STREAMED);
            for (String s : sessions) {
                queries.ask(s, AnswerWorkload.QUESTIONS.get(0), CLOSING);
            }
            producer.flush();
            queries.requireDelivered();
            answers.awaitAll(queries.ids(), Duration.ofSeconds(60), "every query");
            answers.drainToEnd(Duration.ofSeconds(30));

            assertThat(status(job)).as("job state at the end").isEqualTo(JobStatus.RUNNING);
            AnswerWorkload.assertExactlyOnce(queries, answers);
            assertThat(answers.all())
                    .as("answers by the session that was asked")
                    .allSatisfy(a -> assertThat(a.getSessionId())
                            .as("session of query %s", a.getQueryId())
                            .isEqualTo(queries.session(a.getQueryId())));
            assertThat(answers.all())
                    .as("answers with citations")
                    .extracting(Answer::getCitations)
                    .allSatisfy(c -> assertThat(c).isNotEmpty());
            AnswerWorkload.logLatencies(REPORT, queries, answers, CLOSING);
        } finally {
            if (job != null && !status(job).isGloballyTerminalState()) {
                job.cancel().get(30, TimeUnit.SECONDS);
            }
            REPORT.line("embedded latency IT took {} s", TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - began));
        }
    }

    private static JobStatus status(JobClient job) {
        try {
            return job.getJobStatus().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("cannot read the status of job " + job.getJobID(), e);
        }
    }
}
