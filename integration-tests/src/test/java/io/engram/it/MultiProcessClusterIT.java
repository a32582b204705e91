package io.engram.it;

import static io.engram.it.AnswerWorkload.ms;
import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.Answer;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.SourceCoordinates;
import io.engram.topology.EngineSessionStage;
import io.engram.topology.cli.CliContext;
import io.engram.topology.cli.EngramCli;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.junit.jupiter.api.Test;

/**
 * Engram on a real multi-process cluster: a Flink JobManager and two TaskManagers as separate JVMs on loopback
 * ({@link FlinkProcessCluster}), three Kafka KRaft brokers with replication factor 3 and min ISR 2
 * ({@link ThreeBrokerKafka}), the job submitted with {@code engram submit} at parallelism 2 over a tiny model, its
 * sessions chosen so that both TaskManagers hold some.
 *
 * <p>While queries stream in, one TaskManager is killed with SIGKILL and a replacement started; later one Kafka broker
 * is stopped and restarted. Asserted: the job is RUNNING again with every subtask on a live TaskManager; every query
 * is answered exactly once on the answers topic (read_committed; none missing, none twice, none unknown); answers after
 * the kill still see each session's memory (same memory size as before the kill, citing only the content produced
 * before it). Measured and logged, not asserted: submission to first answer, answer latency p50/p99, recovery time.
 * The workload (sessions, documents, query pacing, model and engine options) is {@link AnswerWorkload}'s, which
 * {@link EmbeddedLatencyIT} runs on the embedded default for comparison (docs/bench/cluster.md).
 */
class MultiProcessClusterIT {

    private static final AnswerWorkload.Report REPORT = new AnswerWorkload.Report("MultiProcessClusterIT");

    @Test
    void sessionsSurviveTaskManagerKillAndBrokerRestart() throws Exception {
        EngramSchemas.trustEngramClasses();
        Path root = Files.createTempDirectory("multi-process-");
        report("multi-process cluster under {}", root);
        long started = System.nanoTime();
        FlinkProcessCluster flink = FlinkProcessCluster.start(root.resolve("flink"), 2, Map.of());
        try (flink;
                ThreeBrokerKafka kafka = ThreeBrokerKafka.start(root.resolve("kafka"))) {
            run(root, flink, kafka);
            flink.close();
            // blob caches and extracted RPC jars (~180 MB per TaskManager); the logs stay
            flink.deleteTemporaryFiles();
        } catch (Throwable t) {
            flink.printLogTails(System.err, 60);
            throw t;
        } finally {
            report(
                    "multi-process IT took {} s (logs of the Flink processes under {})",
                    TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started),
                    flink.dir());
        }
    }

    private void run(Path root, FlinkProcessCluster flink, ThreeBrokerKafka kafka) throws Exception {
        String run = UUID.randomUUID().toString().substring(0, 8);
        AnswerWorkload.Plan plan = AnswerWorkload.plan(
                run,
                root,
                kafka.bootstrapServers(),
                root.resolve("flink").resolve("checkpoints").toUri().toString());
        Map<String, String> set = new LinkedHashMap<>(plan.settings());
        set.put("engram.kafka.topic.replication-factor", "3");
        Cli cli = new Cli(set);

        String input = plan.inputTopic();
        String answersTopic = plan.answersTopic();
        cli.ok("topics", "create");
        report(
                "topics created: input {} ({}), answers {} ({})",
                input,
                kafka.describe(input),
                answersTopic,
                kafka.describe(answersTopic));
        assertThat(kafka.describe(input)).isEqualTo("rf=3 min.insync.replicas=2");

        flink.awaitTaskManagers(2, Duration.ofSeconds(90));
        report("Flink cluster up: JobManager at {}, 2 TaskManagers", flink.restAddress());

        List<String> sessions = AnswerWorkload.sessionsOnEverySubtask(run);
        try (KafkaProducer<byte[], byte[]> producer = AnswerWorkload.producer(kafka.bootstrapServers());
                AnswerCollector answers = AnswerCollector.start(kafka.bootstrapServers(), answersTopic)) {
            QueryLog queries = new QueryLog(producer, input);
            // content and the first questions wait in the input topic, so the first answer measures the job's start
            Map<String, List<SourceCoordinates>> content =
                    AnswerWorkload.produceStart(producer, input, sessions, queries);

            long submitted = System.nanoTime();
            String jobId = cli.ok("submit", "--jobmanager", flink.restAddress().toString(), "--jar", jar().toString())
                    .strip();
            assertThat(KafkaBroker.await(() -> flink.allRunning(jobId), Duration.ofSeconds(90)))
                    .as("job %s and all its subtasks RUNNING; subtasks: %s", jobId, flink.subtasks(jobId))
                    .isTrue();
            report("submitted job {}; all subtasks RUNNING after {} ms", jobId, ms(System.nanoTime() - submitted));

            Set<String> taskManagersUsed = flink.subtasks(jobId).stream()
                    .map(FlinkProcessCluster.Subtask::taskManager)
                    .collect(Collectors.toSet());
            assertThat(taskManagersUsed)
                    .as("TaskManagers running the job's subtasks: %s", flink.subtasks(jobId))
                    .containsExactlyInAnyOrder("tm-1", "tm-2");

            answers.awaitAll(queries.ids(), Duration.ofSeconds(120), "the first questions");
            report(
                    "METRIC submission-to-first-answer {} ms (all {} first answers after {} ms)",
                    ms(answers.firstSeenNanos() - submitted),
                    queries.ids().size(),
                    ms(System.nanoTime() - submitted));
            Map<String, Long> memoryBefore = new HashMap<>();
            for (Answer a : answers.all()) {
                memoryBefore.merge(a.getSessionId(), a.getMemory().getTokens(), Math::max);
            }
            assertThat(memoryBefore)
                    .as("memory tokens per session before the kill")
                    .hasSize(sessions.size())
                    .allSatisfy((s, t) -> assertThat(t).as("memory of %s", s).isPositive());

            // queries stream in while a TaskManager dies
            queries.streamFor(Duration.ofSeconds(2), sessions, "before-kill");
            String victim = sessionOperatorTaskManager(flink, jobId);
            report("placement before the kill: {}", placement(flink, jobId));
            long killed = System.nanoTime();
            flink.kill(victim);
            report("killed {} (SIGKILL), which ran session-memory subtask 0", victim);
            flink.startTaskManager("tm-3");
            queries.streamFor(Duration.ofSeconds(1), sessions, "after-kill");
            boolean recovered = KafkaBroker.await(
                    () -> {
                        queries.askNext(sessions, "after-kill");
                        flink.requireAlive();
                        return !flink.failures(jobId).isEmpty()
                                && flink.allRunning(jobId)
                                && flink.subtasks(jobId).stream()
                                        .noneMatch(t -> t.taskManager().equals(victim));
                    },
                    Duration.ofSeconds(120));
            long recoveredAt = System.nanoTime();
            assertThat(recovered)
                    .as(
                            "job %s RUNNING again on live TaskManagers after killing %s; failures %s, subtasks %s",
                            jobId, victim, flink.failures(jobId), flink.subtasks(jobId))
                    .isTrue();
            report(
                    "METRIC recovery-after-taskmanager-kill {} ms (kill to all subtasks RUNNING; failover cause: {})",
                    ms(recoveredAt - killed),
                    flink.failures(jobId));
            report("placement after the recovery: {}", placement(flink, jobId));
            queries.streamFor(Duration.ofSeconds(2), sessions, "after-kill");
            assertThat(KafkaBroker.await(
                            () -> {
                                queries.askNext(sessions, "after-kill");
                                return flink.taskManagerIds().equals(Set.of(otherThan(victim), "tm-3"));
                            },
                            Duration.ofSeconds(90)))
                    .as(
                            "the JobManager has dropped %s and registered the replacement tm-3: %s",
                            victim, flink.taskManagerIds())
                    .isTrue();
            report("TaskManagers after the kill: {}", flink.taskManagerIds());

            // one broker down and back: RF 3 / min ISR 2 lets producers and the job's transactions go on
            int broker = kafka.brokerIds().get(0);
            int failoversBefore = flink.failures(jobId).size();
            kafka.stopBroker(broker);
            report("stopped Kafka broker {}", broker);
            queries.streamFor(Duration.ofSeconds(3), sessions, "broker-down");
            long restart = System.nanoTime();
            kafka.startBroker(broker);
            report("restarted Kafka broker {}", broker);
            queries.streamFor(Duration.ofSeconds(2), sessions, "broker-back");
            assertThat(KafkaBroker.await(() -> kafka.fullyInSync(List.of(input, answersTopic)), Duration.ofSeconds(90)))
                    .as(
                            "all replicas of %s and %s in sync again after restarting broker %d",
                            input, answersTopic, broker)
                    .isTrue();
            report("METRIC broker-restart-to-full-isr {} ms", ms(System.nanoTime() - restart));
            report(
                    "METRIC failovers-during-broker-outage {} (the job went on without a restart when 0)",
                    flink.failures(jobId).size() - failoversBefore);
            producer.flush();
            queries.requireDelivered();

            answers.awaitAll(queries.ids(), Duration.ofSeconds(120), "every query");
            report(
                    "METRIC kill-to-first-answer-of-a-later-query {} ms",
                    ms(answers.firstSeenAfter(queries.sentAfter(killed)) - killed));
            // late duplicates would come from a replay of already committed transactions: read two more checkpoints'
            // worth
            long checkpoints = flink.completedCheckpoints(jobId);
            assertThat(KafkaBroker.await(
                            () -> flink.completedCheckpoints(jobId) >= checkpoints + 2, Duration.ofSeconds(60)))
                    .as("two more checkpoints of job %s after the last answer", jobId)
                    .isTrue();
            answers.drainToEnd(Duration.ofSeconds(30));

            assertThat(flink.jobState(jobId)).as("job state at the end").isEqualTo("RUNNING");
            // the operator's metrics through Flink's REST metrics endpoint (counters restart with a task: since
            // recovery)
            Map<String, Double>[] seen = new Map[1];
            KafkaBroker.await(
                    () -> (seen[0] = flink.operatorMetricSums(jobId, "session memory", "session_memory."))
                                    .getOrDefault("queriesAnswered", 0.0)
                            > 0,
                    Duration.ofSeconds(60));
            Map<String, Double> metrics = seen[0];
            report("METRIC operator-metrics (sum over subtasks, REST) {}", metrics);
            assertThat(metrics)
                    .as("operator metrics on the REST endpoint")
                    .containsKeys(
                            "tokensIngested",
                            "queriesAnswered",
                            "deadLetters",
                            "memoryStateBytes",
                            "memoryUnits",
                            "workingSetHitRate",
                            "engineTokensPerSecond");
            assertThat(metrics.get("queriesAnswered"))
                    .as("queries answered since the recovery")
                    .isPositive();
            assertThat(metrics.get("memoryStateBytes")).isPositive();
            AnswerWorkload.assertExactlyOnce(queries, answers);
            assertMemoryIntact(queries, answers, memoryBefore, content, killed);
            AnswerWorkload.logLatencies(REPORT, queries, answers);
            report("failovers of job {}: {}", jobId, flink.failures(jobId));
            assertThat(cli.ok("cancel", "--jobmanager", flink.restAddress().toString(), jobId)
                            .strip())
                    .isEqualTo("CANCELED");
        }
    }

    /**
     * Answers to queries asked after the kill attend to the same memory as before it and cite only the documents
     * produced before it: the killed TaskManager's sessions came back from the checkpoint, not empty.
     */
    private static void assertMemoryIntact(
            QueryLog queries,
            AnswerCollector answers,
            Map<String, Long> memoryBefore,
            Map<String, List<SourceCoordinates>> content,
            long killed) {
        List<Answer> later = answers.all().stream()
                .filter(a -> queries.sentAt(a.getQueryId()) > killed)
                .toList();
        assertThat(later)
                .as("answers to queries asked after the kill")
                .hasSizeGreaterThanOrEqualTo(memoryBefore.size());
        assertThat(later.stream().map(Answer::getSessionId).collect(Collectors.toSet()))
                .as("sessions answered after the kill")
                .isEqualTo(memoryBefore.keySet());
        for (Answer a : later) {
            assertThat(a.getSessionId())
                    .as("session of query %s", a.getQueryId())
                    .isEqualTo(queries.session(a.getQueryId()));
            assertThat(a.getMemory().getTokens())
                    .as("memory tokens of session %s after the kill (query %s)", a.getSessionId(), a.getQueryId())
                    .isEqualTo(memoryBefore.get(a.getSessionId()));
            List<SourceCoordinates> own = content.get(a.getSessionId());
            assertThat(a.getCitations())
                    .as("citations of query %s in session %s", a.getQueryId(), a.getSessionId())
                    .isNotEmpty()
                    .allSatisfy(c -> assertThat(own)
                            .as("content of session %s", a.getSessionId())
                            .contains(c.getSegment().getSource()));
        }
    }

    /** "vertex#subtask@taskmanager" for every subtask, for the report. */
    private static String placement(FlinkProcessCluster flink, String jobId) {
        return flink.subtasks(jobId).stream()
                .map(t -> "%s#%d@%s".formatted(t.vertex().replaceAll(" ->.*", ""), t.index(), t.taskManager()))
                .collect(Collectors.joining(", "));
    }

    /** The one of tm-1 and tm-2 that is not {@code tm}. */
    private static String otherThan(String tm) {
        return tm.equals("tm-1") ? "tm-2" : "tm-1";
    }

    /** The TaskManager that runs subtask 0 of the session-memory vertex. */
    private static String sessionOperatorTaskManager(FlinkProcessCluster flink, String jobId) {
        List<FlinkProcessCluster.Subtask> subtasks = flink.subtasks(jobId);
        return subtasks.stream()
                .filter(t -> t.vertex().contains("session memory") && t.index() == 0)
                .map(FlinkProcessCluster.Subtask::taskManager)
                .findFirst()
                .orElseThrow(() -> new AssertionError("no 'session memory' subtask 0 among " + subtasks));
    }

    /** One line of the test's report (see {@link AnswerWorkload.Report}). */
    static void report(String format, Object... args) {
        REPORT.line(format, args);
    }

    static Path jar() {
        Path jar = Path.of("..", "topology", "target", "engram.jar")
                .toAbsolutePath()
                .normalize();
        assertThat(jar).as("the fat jar is built before the integration tests").exists();
        return jar;
    }

    /** {@code engram --set k=v ... COMMAND} in this JVM, as SubmitIT runs it. */
    record Cli(Map<String, String> set) {
        String ok(String... command) {
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            CliContext ctx = new CliContext(
                    new PrintWriter(out, true),
                    new PrintWriter(err, true),
                    Map.of(),
                    InputStream.nullInputStream(),
                    false,
                    EngineSessionStage::from,
                    new CompletableFuture<>());
            List<String> args = new ArrayList<>();
            set.forEach((k, v) -> args.addAll(List.of("--set", k + "=" + v)));
            args.addAll(List.of(command));
            int code = new EngramCli(ctx).execute(args.toArray(String[]::new));
            assertThat(code)
                    .as("engram %s; stderr: %s", String.join(" ", command), err)
                    .isZero();
            return out.toString();
        }
    }
}
