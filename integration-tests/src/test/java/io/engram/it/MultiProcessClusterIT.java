package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.schemas.Answer;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SourceCoordinates;
import io.engram.topology.EngineSessionStage;
import io.engram.topology.cli.CliContext;
import io.engram.topology.cli.EngramCli;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
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
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;
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
 */
class MultiProcessClusterIT {

    private static final int PARALLELISM = 2;
    private static final int SESSIONS_PER_SUBTASK = 3;
    private static final List<String> QUESTIONS = List.of("What is the vault code?", "Who counted the gulls?");

    @Test
    void sessionsSurviveTaskManagerKillAndBrokerRestart() throws Exception {
        EngramSchemas.trustEngramClasses();
        Path root = Files.createTempDirectory("multi-process-");
        report("multi-process cluster under {}", root);
        long started = System.nanoTime();
        FlinkProcessCluster flink = FlinkProcessCluster.start(root.resolve("flink"), 2, Map.of());
        try (flink; ThreeBrokerKafka kafka = ThreeBrokerKafka.start(root.resolve("kafka"))) {
            run(root, flink, kafka);
            flink.close();
            // blob caches and extracted RPC jars (~180 MB per TaskManager); the logs stay
            flink.deleteTemporaryFiles();
        } catch (Throwable t) {
            flink.printLogTails(System.err, 60);
            throw t;
        } finally {
            report("multi-process IT took {} s (logs of the Flink processes under {})",
                    TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started), flink.dir());
        }
    }

    private void run(Path root, FlinkProcessCluster flink, ThreeBrokerKafka kafka) throws Exception {
        String run = UUID.randomUUID().toString().substring(0, 8);
        Map<String, String> topics = new LinkedHashMap<>();
        for (String t : List.of("input", "answers", "summaries", "attributions", "dead-letters")) {
            topics.put("engram.kafka.topic." + t, t + "-" + run);
        }
        Path model = TinyModels.write(Files.createDirectories(root.resolve("model")), TinyModels.Variant.LLAMA, DType.F32, 42);
        Map<String, String> set = new LinkedHashMap<>(topics);
        set.put("engram.kafka.bootstrap-servers", kafka.bootstrapServers());
        set.put("engram.kafka.group-id", "mp-" + run);
        set.put("engram.kafka.transactional-id-prefix", "mp-" + run);
        set.put("engram.kafka.topic.partitions", "4");
        set.put("engram.kafka.topic.replication-factor", "3");
        set.put("engram.job.parallelism", String.valueOf(PARALLELISM));
        set.put("engram.job.checkpoint-interval", "1s");
        set.put("engram.job.checkpoint-dir", root.resolve("flink").resolve("checkpoints").toUri().toString());
        set.put("engram.data-dir", root.resolve("data").toString());
        set.put("engram.model.dir", model.toString());
        set.put("engram.engine.max-new-tokens", "4");
        Cli cli = new Cli(set);

        String input = topics.get("engram.kafka.topic.input");
        String answersTopic = topics.get("engram.kafka.topic.answers");
        cli.ok("topics", "create");
        report("topics created: input {} ({}), answers {} ({})", input, kafka.describe(input), answersTopic,
                kafka.describe(answersTopic));
        assertThat(kafka.describe(input)).isEqualTo("rf=3 min.insync.replicas=2");

        flink.awaitTaskManagers(2, Duration.ofSeconds(90));
        report("Flink cluster up: JobManager at {}, 2 TaskManagers", flink.restAddress());

        List<String> sessions = sessionsOnBothSubtasks(run);
        try (KafkaProducer<byte[], byte[]> producer = producer(kafka);
                AnswerCollector answers = AnswerCollector.start(kafka.bootstrapServers(), answersTopic)) {
            QueryLog queries = new QueryLog(producer, input);
            // content and the first questions wait in the input topic, so the first answer measures the job's start
            Map<String, List<SourceCoordinates>> content = new HashMap<>();
            for (String s : sessions) {
                content.put(s, produceDocument(producer, input, s));
            }
            for (String s : sessions) {
                for (String q : QUESTIONS) {
                    queries.ask(s, q, "first");
                }
            }
            producer.flush();

            long submitted = System.nanoTime();
            String jobId = cli.ok("submit", "--jobmanager", flink.restAddress().toString(), "--jar", jar().toString())
                    .strip();
            assertThat(KafkaBroker.await(() -> flink.allRunning(jobId), Duration.ofSeconds(90)))
                    .as("job %s and all its subtasks RUNNING; subtasks: %s", jobId, flink.subtasks(jobId)).isTrue();
            report("submitted job {}; all subtasks RUNNING after {} ms", jobId, ms(System.nanoTime() - submitted));

            Set<String> taskManagersUsed = flink.subtasks(jobId).stream()
                    .map(FlinkProcessCluster.Subtask::taskManager).collect(Collectors.toSet());
            assertThat(taskManagersUsed).as("TaskManagers running the job's subtasks: %s", flink.subtasks(jobId))
                    .containsExactlyInAnyOrder("tm-1", "tm-2");

            answers.awaitAll(queries.ids(), Duration.ofSeconds(120), "the first questions");
            report("METRIC submission-to-first-answer {} ms (all {} first answers after {} ms)",
                    ms(answers.firstSeenNanos() - submitted), queries.ids().size(), ms(System.nanoTime() - submitted));
            Map<String, Long> memoryBefore = new HashMap<>();
            for (Answer a : answers.all()) {
                memoryBefore.merge(a.getSessionId(), a.getMemory().getTokens(), Math::max);
            }
            assertThat(memoryBefore).as("memory tokens per session before the kill").hasSize(sessions.size())
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
            boolean recovered = KafkaBroker.await(() -> {
                queries.askNext(sessions, "after-kill");
                flink.requireAlive();
                return !flink.failures(jobId).isEmpty() && flink.allRunning(jobId)
                        && flink.subtasks(jobId).stream().noneMatch(t -> t.taskManager().equals(victim));
            }, Duration.ofSeconds(120));
            long recoveredAt = System.nanoTime();
            assertThat(recovered).as("job %s RUNNING again on live TaskManagers after killing %s; failures %s, subtasks %s",
                    jobId, victim, flink.failures(jobId), flink.subtasks(jobId)).isTrue();
            report("METRIC recovery-after-taskmanager-kill {} ms (kill to all subtasks RUNNING; failover cause: {})",
                    ms(recoveredAt - killed), flink.failures(jobId));
            report("placement after the recovery: {}", placement(flink, jobId));
            queries.streamFor(Duration.ofSeconds(2), sessions, "after-kill");
            assertThat(KafkaBroker.await(() -> {
                queries.askNext(sessions, "after-kill");
                return flink.taskManagerIds().equals(Set.of(otherThan(victim), "tm-3"));
            }, Duration.ofSeconds(90))).as("the JobManager has dropped %s and registered the replacement tm-3: %s", victim,
                    flink.taskManagerIds()).isTrue();
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
                    .as("all replicas of %s and %s in sync again after restarting broker %d", input, answersTopic, broker)
                    .isTrue();
            report("METRIC broker-restart-to-full-isr {} ms", ms(System.nanoTime() - restart));
            report("METRIC failovers-during-broker-outage {} (the job went on without a restart when 0)",
                    flink.failures(jobId).size() - failoversBefore);
            producer.flush();
            queries.requireDelivered();

            answers.awaitAll(queries.ids(), Duration.ofSeconds(120), "every query");
            report("METRIC kill-to-first-answer-of-a-later-query {} ms", ms(answers.firstSeenAfter(queries.sentAfter(killed))
                    - killed));
            // late duplicates would come from a replay of already committed transactions: read two more checkpoints' worth
            long checkpoints = flink.completedCheckpoints(jobId);
            assertThat(KafkaBroker.await(() -> flink.completedCheckpoints(jobId) >= checkpoints + 2, Duration.ofSeconds(60)))
                    .as("two more checkpoints of job %s after the last answer", jobId).isTrue();
            answers.drainToEnd(Duration.ofSeconds(30));

            assertThat(flink.jobState(jobId)).as("job state at the end").isEqualTo("RUNNING");
            // the operator's metrics through Flink's REST metrics endpoint (counters restart with a task: since recovery)
            Map<String, Double>[] seen = new Map[1];
            KafkaBroker.await(() -> (seen[0] = flink.operatorMetricSums(jobId, "session memory", "session_memory."))
                    .getOrDefault("queriesAnswered", 0.0) > 0, Duration.ofSeconds(60));
            Map<String, Double> metrics = seen[0];
            report("METRIC operator-metrics (sum over subtasks, REST) {}", metrics);
            assertThat(metrics).as("operator metrics on the REST endpoint").containsKeys("tokensIngested", "queriesAnswered",
                    "deadLetters", "memoryStateBytes", "memoryUnits", "workingSetHitRate", "engineTokensPerSecond");
            assertThat(metrics.get("queriesAnswered")).as("queries answered since the recovery").isPositive();
            assertThat(metrics.get("memoryStateBytes")).isPositive();
            assertExactlyOnce(queries, answers);
            assertMemoryIntact(queries, answers, memoryBefore, content, killed);
            logLatencies(queries, answers);
            report("failovers of job {}: {}", jobId, flink.failures(jobId));
            assertThat(cli.ok("cancel", "--jobmanager", flink.restAddress().toString(), jobId).strip()).isEqualTo("CANCELED");
        }
    }

    /** Every query id answered once, and nothing else on the answers topic. */
    private static void assertExactlyOnce(QueryLog queries, AnswerCollector answers) {
        Map<String, Long> counts = answers.all().stream().collect(Collectors.groupingBy(Answer::getQueryId,
                Collectors.counting()));
        Map<String, Long> duplicates = counts.entrySet().stream().filter(e -> e.getValue() > 1)
                .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue));
        assertThat(duplicates).as("queries answered more than once (query id -> answers)").isEmpty();
        assertThat(counts.keySet()).as("answered query ids against the %d asked", queries.ids().size())
                .containsExactlyInAnyOrderElementsOf(queries.ids());
    }

    /**
     * Answers to queries asked after the kill attend to the same memory as before it and cite only the documents
     * produced before it: the killed TaskManager's sessions came back from the checkpoint, not empty.
     */
    private static void assertMemoryIntact(QueryLog queries, AnswerCollector answers, Map<String, Long> memoryBefore,
            Map<String, List<SourceCoordinates>> content, long killed) {
        List<Answer> later = answers.all().stream().filter(a -> queries.sentAt(a.getQueryId()) > killed).toList();
        assertThat(later).as("answers to queries asked after the kill").hasSizeGreaterThanOrEqualTo(memoryBefore.size());
        assertThat(later.stream().map(Answer::getSessionId).collect(Collectors.toSet()))
                .as("sessions answered after the kill").isEqualTo(memoryBefore.keySet());
        for (Answer a : later) {
            assertThat(a.getSessionId()).as("session of query %s", a.getQueryId()).isEqualTo(queries.session(a.getQueryId()));
            assertThat(a.getMemory().getTokens()).as("memory tokens of session %s after the kill (query %s)",
                    a.getSessionId(), a.getQueryId()).isEqualTo(memoryBefore.get(a.getSessionId()));
            List<SourceCoordinates> own = content.get(a.getSessionId());
            assertThat(a.getCitations()).as("citations of query %s in session %s", a.getQueryId(), a.getSessionId())
                    .isNotEmpty()
                    .allSatisfy(c -> assertThat(own).as("content of session %s", a.getSessionId())
                            .contains(c.getSegment().getSource()));
        }
    }

    private static void logLatencies(QueryLog queries, AnswerCollector answers) {
        Map<String, List<Long>> byPhase = new LinkedHashMap<>();
        for (String id : queries.ids()) {
            byPhase.computeIfAbsent(queries.phase(id), p -> new ArrayList<>())
                    .add(ms(answers.seenNanos(id) - queries.sentNanos(id)));
        }
        List<Long> all = byPhase.entrySet().stream().filter(e -> !e.getKey().equals("first"))
                .flatMap(e -> e.getValue().stream()).toList();
        byPhase.forEach((phase, l) -> report("METRIC answer-latency phase={} n={} p50={} ms p99={} ms max={} ms",
                phase, l.size(), percentile(l, 50), percentile(l, 99), percentile(l, 100)));
        report("METRIC answer-latency streamed (all phases but the first batch, asked before the submission) n={} p50={} ms p99={} ms", all.size(),
                percentile(all, 50), percentile(all, 99));
    }

    private static long percentile(List<Long> values, int p) {
        List<Long> sorted = values.stream().sorted().toList();
        int i = (int) Math.ceil(p / 100.0 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
    }

    /** "vertex#subtask@taskmanager" for every subtask, for the report. */
    private static String placement(FlinkProcessCluster flink, String jobId) {
        return flink.subtasks(jobId).stream().map(t -> "%s#%d@%s".formatted(t.vertex().replaceAll(" ->.*", ""), t.index(),
                t.taskManager())).collect(Collectors.joining(", "));
    }

    /** The one of tm-1 and tm-2 that is not {@code tm}. */
    private static String otherThan(String tm) {
        return tm.equals("tm-1") ? "tm-2" : "tm-1";
    }

    /** The TaskManager that runs subtask 0 of the session-memory vertex. */
    private static String sessionOperatorTaskManager(FlinkProcessCluster flink, String jobId) {
        List<FlinkProcessCluster.Subtask> subtasks = flink.subtasks(jobId);
        return subtasks.stream().filter(t -> t.vertex().contains("session memory") && t.index() == 0)
                .map(FlinkProcessCluster.Subtask::taskManager).findFirst()
                .orElseThrow(() -> new AssertionError("no 'session memory' subtask 0 among " + subtasks));
    }

    /** Session ids of which {@link #SESSIONS_PER_SUBTASK} go to each keyed subtask (Flink's key-group assignment). */
    private static List<String> sessionsOnBothSubtasks(String run) {
        int maxParallelism = KeyGroupRangeAssignment.computeDefaultMaxParallelism(PARALLELISM);
        Map<Integer, List<String>> bySubtask = new HashMap<>();
        for (int i = 0; bySubtask.values().stream().mapToInt(List::size).sum() < PARALLELISM * SESSIONS_PER_SUBTASK; i++) {
            String id = "s" + i + "-" + run;
            List<String> l = bySubtask.computeIfAbsent(
                    KeyGroupRangeAssignment.assignKeyToParallelOperator(id, maxParallelism, PARALLELISM), k -> new ArrayList<>());
            if (l.size() < SESSIONS_PER_SUBTASK) {
                l.add(id);
            }
        }
        return bySubtask.values().stream().flatMap(List::stream).sorted().toList();
    }

    /** Two document chunks with facts of session {@code s}; returns their coordinates in the input topic. */
    private static List<SourceCoordinates> produceDocument(KafkaProducer<byte[], byte[]> producer, String topic, String s)
            throws Exception {
        List<SourceCoordinates> out = new ArrayList<>();
        int code = Math.floorMod(s.hashCode(), 9000) + 1000;
        List<String> chunks = List.of("The vault code of " + s + " is " + code + ".",
                "The keeper of " + s + " counted " + (code % 300) + " gulls.");
        for (int i = 0; i < chunks.size(); i++) {
            EngramEvent e = EngramEvent.newBuilder().setSessionId(s).setEventId("doc-" + s + "-" + i)
                    .setTimestampMs(System.currentTimeMillis())
                    .setPayload(ContentEvent.newBuilder().setKind(ContentKind.DOCUMENT_CHUNK).setText(chunks.get(i))
                            .setDocumentId("facts-" + s).setChunkIndex(i).build()).build();
            RecordMetadata m = producer.send(record(topic, s, bytes(e))).get(30, TimeUnit.SECONDS);
            out.add(new SourceCoordinates(topic, m.partition(), m.offset()));
        }
        return out;
    }

    private static KafkaProducer<byte[], byte[]> producer(ThreeBrokerKafka kafka) {
        return new KafkaProducer<>(Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers(),
                ProducerConfig.ACKS_CONFIG, "all", ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                ProducerConfig.LINGER_MS_CONFIG, 0), new ByteArraySerializer(), new ByteArraySerializer());
    }

    static ProducerRecord<byte[], byte[]> record(String topic, String session, byte[] value) {
        return new ProducerRecord<>(topic, session.getBytes(StandardCharsets.UTF_8), value);
    }

    static byte[] bytes(EngramEvent e) throws Exception {
        ByteBuffer b = EngramEvent.getEncoder().encode(e);
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    static EngramEvent query(String session, String queryId, String question) {
        return EngramEvent.newBuilder().setSessionId(session).setEventId(queryId).setTimestampMs(System.currentTimeMillis())
                .setPayload(new QueryEvent(queryId, question, GenerationOptions.newBuilder().setMaxNewTokens(4).build()))
                .build();
    }

    /**
     * One line of the test's report on stdout (Failsafe keeps it in the report): progress and the METRIC lines. Not a
     * logger: Flink's test jars (flink-runtime and others, through flink-test-utils) carry a log4j2-test.properties
     * that log4j prefers to our log4j2-test.xml, and it turns logging off.
     */
    static void report(String format, Object... args) {
        String line = format;
        for (Object a : args) {
            line = line.replaceFirst("\\{\\}", java.util.regex.Matcher.quoteReplacement(String.valueOf(a)));
        }
        System.out.printf("%tT [MultiProcessClusterIT] %s%n", System.currentTimeMillis(), line);
    }

    static long ms(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    static Path jar() {
        Path jar = Path.of("..", "topology", "target", "engram.jar").toAbsolutePath().normalize();
        assertThat(jar).as("the fat jar is built before the integration tests").exists();
        return jar;
    }

    /** {@code engram --set k=v ... COMMAND} in this JVM, as SubmitIT runs it. */
    record Cli(Map<String, String> set) {
        String ok(String... command) {
            StringWriter out = new StringWriter();
            StringWriter err = new StringWriter();
            CliContext ctx = new CliContext(new PrintWriter(out, true), new PrintWriter(err, true), Map.of(),
                    InputStream.nullInputStream(), false, EngineSessionStage::from, new CompletableFuture<>());
            List<String> args = new ArrayList<>();
            set.forEach((k, v) -> args.addAll(List.of("--set", k + "=" + v)));
            args.addAll(List.of(command));
            int code = new EngramCli(ctx).execute(args.toArray(String[]::new));
            assertThat(code).as("engram %s; stderr: %s", String.join(" ", command), err).isZero();
            return out.toString();
        }
    }
}
