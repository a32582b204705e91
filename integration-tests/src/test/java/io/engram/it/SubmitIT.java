package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.schemas.Answer;
import io.engram.schemas.EngramSchemas;
import io.engram.topology.EngineSessionStage;
import io.engram.topology.KafkaOptions;
import io.engram.topology.cli.CliContext;
import io.engram.topology.cli.EngramCli;
import io.engram.topology.options.ResolvedOptions;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * {@code engram submit} against a Flink cluster's REST endpoint (a MiniCluster serving REST on a free port): the jar
 * is uploaded, the job runs, content and a question produced with {@code engram produce}/{@code ask}-style events get
 * their answer on the answers topic. The cluster resolves classes parent-first because it shares this JVM's classpath.
 */
class SubmitIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    static MiniCluster cluster;
    static URI rest;

    @BeforeAll
    static void startCluster() throws Exception {
        EngramSchemas.trustEngramClasses();
        Configuration conf = new Configuration();
        conf.set(RestOptions.BIND_PORT, "0");
        conf.set(CoreOptions.CLASSLOADER_RESOLVE_ORDER, "parent-first");
        cluster = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(2)
                .setConfiguration(conf)
                .build());
        cluster.start();
        rest = cluster.getRestAddress().get(30, TimeUnit.SECONDS);
    }

    @AfterAll
    static void stopCluster() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void submittedJobAnswersQuestions() throws Exception {
        Setup run = setup();
        JobID id = JobID.fromHexString(run.ok("submit", "--jobmanager", rest.toString(), "--jar", jar().toString())
                .trim());
        assertThat(KafkaBroker.await(() -> status(id) == JobStatus.RUNNING, Duration.ofSeconds(60)))
                .as("job running")
                .isTrue();

        run.ok("produce", "-s", "sub", run.document().toString());
        run.ok("ask", "-s", "sub", "--via", "kafka", "What is the vault code?");

        try (KafkaConsumer<byte[], byte[]> c = KAFKA.readCommitted(run.options().get(KafkaOptions.ANSWERS_TOPIC))) {
            List<ConsumerRecord<byte[], byte[]>> recs =
                    KafkaBroker.pollUntil(c, r -> !r.isEmpty(), Duration.ofSeconds(60));
            assertThat(recs).hasSize(1);
            Answer a = Answer.getDecoder().decode(recs.get(0).value());
            assertThat(a.getSessionId()).isEqualTo("sub");
            assertThat(a.getCitations()).isNotEmpty();
        }
        cluster.cancelJob(id).get(30, TimeUnit.SECONDS);
    }

    /**
     * The cluster commands over REST: submit, status shows RUNNING, stop-with-savepoint, resubmit from the savepoint,
     * a question answered from memory ingested before the savepoint, cancel. Exactly two answers, the second over the
     * same memory size and citing the document produced before the first question: a job started without the savepoint
     * has empty keyed state and starts from the group's committed offsets (tried: it re-read the input and answered
     * the first question a second time, so three answers).
     */
    @Test
    void sessionMemorySurvivesStopWithSavepointAndResubmit() throws Exception {
        Setup run = setup();
        String jm = rest.toString();
        String first =
                run.ok("submit", "--jobmanager", jm, "--jar", jar().toString()).trim();
        JobID firstId = JobID.fromHexString(first);
        try {
            assertThat(KafkaBroker.await(() -> run.state(first).equals("RUNNING"), Duration.ofSeconds(60)))
                    .as("engram status %s says RUNNING", first)
                    .isTrue();
            assertThat(run.ok("status", "--jobmanager", jm).lines())
                    .anySatisfy(l ->
                            assertThat(l).startsWith(first).contains("RUNNING").endsWith("engram"));

            run.ok("produce", "-s", "mem", run.document().toString());
            run.ok("ask", "-s", "mem", "--via", "kafka", "What is the vault code?");
            Answer before = answers(run.options(), 1).get(0);
            assertThat(before.getCitations()).as("answer before the savepoint").isNotEmpty();

            Path savepoints = KAFKA.newDir("savepoints");
            String savepoint = run.ok(
                            "savepoint",
                            "--jobmanager",
                            jm,
                            "--stop",
                            "--dir",
                            savepoints.toUri().toString(),
                            first)
                    .trim();
            assertThat(Path.of(URI.create(savepoint.startsWith("file:") ? savepoint : "file://" + savepoint)))
                    .as("savepoint printed by engram savepoint")
                    .isDirectory()
                    .isDirectoryContaining("glob:**/_metadata")
                    .startsWith(savepoints);
            assertThat(run.state(first)).isEqualTo("FINISHED");

            String second = run.ok(
                            "submit", "--jobmanager", jm, "--jar", jar().toString(), "--from-savepoint", savepoint)
                    .trim();
            JobID secondId = JobID.fromHexString(second);
            try {
                assertThat(KafkaBroker.await(() -> run.state(second).equals("RUNNING"), Duration.ofSeconds(60)))
                        .as("resubmitted job running")
                        .isTrue();
                run.ok("ask", "-s", "mem", "--via", "kafka", "Who counted the gulls?");
                Answer after = answers(run.options(), 2).get(1);
                assertThat(after.getSessionId()).isEqualTo("mem");
                assertThat(after.getMemoryTokens())
                        .as("memory attended to after the restore")
                        .isPositive();
                assertThat(after.getCitations())
                        .as("answer after the restore cites the document ingested before it")
                        .isNotEmpty()
                        .allSatisfy(c -> assertThat(c.getSegment().getSource().getOffset())
                                .isLessThan(before.getQuerySource().getOffset()));
                assertThat(after.getMemory().getTokens())
                        .as("session memory size after the restore")
                        .isEqualTo(before.getMemory().getTokens());

                assertThat(run.ok("cancel", "--jobmanager", jm, second).trim()).isEqualTo("CANCELED");
                assertThat(run.state(second)).isEqualTo("CANCELED");
            } finally {
                cancelQuietly(secondId);
            }
        } finally {
            cancelQuietly(firstId);
        }
    }

    @Test
    void clusterCommandsRefuseBadJobIdsAndUnreachableClusters() throws Exception {
        Setup run = setup();
        String jm = rest.toString();
        run.fails(2, "cancel", "--jobmanager", jm, "not-a-job");
        assertThat(run.err()).contains("not a Flink job id");
        run.fails(2, "status", "--jobmanager", jm, new JobID().toHexString());
        assertThat(run.err()).contains("has no job");
        run.fails(2, "savepoint", "--jobmanager", jm, new JobID().toHexString());
        int closedPort;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            closedPort = s.getLocalPort();
        }
        run.fails(3, "status", "--jobmanager", "http://127.0.0.1:" + closedPort);
        assertThat(run.err()).contains("cannot reach the Flink JobManager");
        run.fails(2, "status", "--jobmanager", "localhost:8081");
        assertThat(run.err()).contains("engram.flink.jobmanager");
        run.fails(2, "submit", "--jobmanager", jm, "--allow-non-restored-state");
        assertThat(run.err()).contains("--from-savepoint");

        // the job's group has committed offsets (an earlier job read the topic): a stateless submit would start
        // there with empty memory, so it is refused unless asked for
        org.apache.kafka.common.TopicPartition p0 =
                new org.apache.kafka.common.TopicPartition(run.options().get(KafkaOptions.INPUT_TOPIC), 0);
        try (var admin = org.apache.kafka.clients.admin.Admin.create(
                Map.of("bootstrap.servers", run.options().get(KafkaOptions.BOOTSTRAP_SERVERS)))) {
            admin.alterConsumerGroupOffsets(
                            run.options().get(KafkaOptions.GROUP_ID),
                            Map.of(p0, new org.apache.kafka.clients.consumer.OffsetAndMetadata(0)))
                    .all()
                    .get();
        }
        run.fails(2, "submit", "--jobmanager", jm, "--jar", jar().toString());
        assertThat(run.err())
                .contains("has committed offsets on 1 partition(s)")
                .contains("--from-savepoint PATH")
                .contains("--discard-memory");
        String id = run.ok("submit", "--jobmanager", jm, "--jar", jar().toString(), "--discard-memory")
                .trim();
        cancelQuietly(JobID.fromHexString(id));
    }

    static Path jar() {
        Path jar = Path.of("..", "topology", "target", "engram.jar")
                .toAbsolutePath()
                .normalize();
        assertThat(jar).as("the fat jar is built before the integration tests").exists();
        return jar;
    }

    static Setup setup() throws Exception {
        Path model = TinyModels.write(KAFKA.newDir("model"), TinyModels.Variant.LLAMA, DType.F32, 42);
        ResolvedOptions options = KAFKA.newOptions(2, Map.of());
        List<String> args = new ArrayList<>();
        for (String key : List.of(
                "engram.kafka.bootstrap-servers",
                "engram.kafka.topic.input",
                "engram.kafka.topic.answers",
                "engram.kafka.topic.summaries",
                "engram.kafka.topic.attributions",
                "engram.kafka.topic.dead-letters",
                "engram.kafka.group-id",
                "engram.kafka.transactional-id-prefix",
                "engram.data-dir")) {
            args.add("--set");
            args.add(key + "="
                    + options.formatted(options.options().stream()
                            .filter(o -> o.key().equals(key))
                            .findFirst()
                            .orElseThrow()));
        }
        args.addAll(List.of(
                "--set",
                "engram.model.dir=" + model,
                "--set",
                "engram.job.checkpoint-interval=300ms",
                "--set",
                "engram.job.checkpoint-dir=" + KAFKA.newDir("chk").toUri(),
                "--set",
                "engram.engine.max-new-tokens=4"));
        Path doc = KAFKA.newDir("doc").resolve("doc.txt");
        Files.writeString(doc, "The vault code is 7481.\n\nThe keeper counted 212 gulls.\n");
        return new Setup(options, args, doc, new StringWriter[2]);
    }

    /** The options of one test and the CLI flags that pass them; runs engram commands in this JVM. */
    record Setup(ResolvedOptions options, List<String> common, Path document, StringWriter[] last) {

        /** Runs {@code engram <common flags> command...} and returns its exit code; stdout/stderr via out()/err(). */
        int exec(String... command) {
            last[0] = new StringWriter();
            last[1] = new StringWriter();
            CliContext ctx = new CliContext(
                    new PrintWriter(last[0], true),
                    new PrintWriter(last[1], true),
                    Map.of(),
                    InputStream.nullInputStream(),
                    false,
                    EngineSessionStage::from,
                    new CompletableFuture<>());
            List<String> args = new ArrayList<>(common);
            args.addAll(List.of(command));
            return new EngramCli(ctx).execute(args.toArray(String[]::new));
        }

        /** Runs the command, asserts exit code 0 and returns its stdout. */
        String ok(String... command) {
            int code = exec(command);
            assertThat(code)
                    .as("engram %s; stderr: %s", String.join(" ", command), err())
                    .isZero();
            return last[0].toString();
        }

        /** Runs the command, asserts exit code {@code code} and nothing on stdout. */
        void fails(int code, String... command) {
            assertThat(exec(command))
                    .as("engram %s; stderr: %s", String.join(" ", command), err())
                    .isEqualTo(code);
            assertThat(last[0].toString())
                    .as("stdout of a failed engram %s", String.join(" ", command))
                    .isEmpty();
        }

        String err() {
            return last[1].toString();
        }

        /** {@code engram status JOB_ID}: the job's state as the CLI prints it. */
        String state(String jobId) {
            return ok("status", "--jobmanager", rest.toString(), jobId).trim();
        }
    }

    static List<Answer> answers(ResolvedOptions options, int n) throws Exception {
        try (KafkaConsumer<byte[], byte[]> c = KAFKA.readCommitted(options.get(KafkaOptions.ANSWERS_TOPIC))) {
            List<ConsumerRecord<byte[], byte[]>> recs =
                    KafkaBroker.pollUntil(c, r -> r.size() >= n, Duration.ofSeconds(90));
            assertThat(recs)
                    .as("answers on %s", options.get(KafkaOptions.ANSWERS_TOPIC))
                    .hasSize(n);
            List<Answer> out = new ArrayList<>();
            for (ConsumerRecord<byte[], byte[]> r : recs) {
                out.add(Answer.getDecoder().decode(r.value()));
            }
            out.sort(java.util.Comparator.comparingLong(a -> a.getQuerySource().getOffset()));
            return out;
        }
    }

    static void cancelQuietly(JobID id) {
        JobStatus s = status(id);
        if (s != null && !s.isGloballyTerminalState()) {
            try {
                cluster.cancelJob(id).get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                // the test's own assertion says what went wrong; this only frees the slots for the next test
            }
        }
    }

    static JobStatus status(JobID id) {
        try {
            return cluster.getJobStatus(id).get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            return null;
        }
    }
}
