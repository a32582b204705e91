package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.schemas.Answer;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SourceCoordinates;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.stream.Collectors;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The answer-latency workload that {@link MultiProcessClusterIT} (separate JVMs, three brokers) and
 * {@link EmbeddedLatencyIT} (one JVM, one broker) both run, so that their {@code METRIC} lines compare: the job at
 * parallelism {@value #PARALLELISM} over a tiny generated Llama (seed 42, 4 new tokens per answer), 4 input partitions,
 * a checkpoint every second (answers are read {@code read_committed}, so an answer is seen when its checkpoint
 * commits); {@value #SESSIONS_PER_SUBTASK} sessions on each keyed subtask, two document chunks per session and the
 * {@link #QUESTIONS} asked of every session before the job starts (phase {@value #FIRST}); then queries streamed round
 * robin, one per 200 ms ({@link QueryLog}).
 */
final class AnswerWorkload {

    static final int PARALLELISM = 2;
    static final int SESSIONS_PER_SUBTASK = 3;
    static final List<String> QUESTIONS = List.of("What is the vault code?", "Who counted the gulls?");
    /** Phase of the queries asked before the job starts: their latency includes the job's start. */
    static final String FIRST = "first";

    private AnswerWorkload() {}

    /**
     * The {@code --set} values of a run: topics, group id and transactional prefix named after {@code run}, the
     * workload's job and engine options, state under {@code root} and the tiny model written to {@code root/model}.
     * Callers add what differs between setups (replication factor).
     */
    record Plan(Map<String, String> settings, String inputTopic, String answersTopic) {}

    static Plan plan(String run, Path root, String bootstrapServers, String checkpointDir) throws Exception {
        Map<String, String> set = new LinkedHashMap<>();
        for (String t : List.of("input", "answers", "summaries", "attributions", "dead-letters")) {
            set.put("engram.kafka.topic." + t, t + "-" + run);
        }
        Path model = TinyModels.write(
                Files.createDirectories(root.resolve("model")), TinyModels.Variant.LLAMA, DType.F32, 42);
        set.put("engram.kafka.bootstrap-servers", bootstrapServers);
        set.put("engram.kafka.group-id", "lat-" + run);
        set.put("engram.kafka.transactional-id-prefix", "lat-" + run);
        set.put("engram.kafka.topic.partitions", "4");
        set.put("engram.job.parallelism", String.valueOf(PARALLELISM));
        set.put("engram.job.checkpoint-interval", "1s");
        set.put("engram.job.checkpoint-dir", checkpointDir);
        set.put("engram.data-dir", root.resolve("data").toString());
        set.put("engram.model.dir", model.toString());
        set.put("engram.engine.max-new-tokens", "4");
        return new Plan(set, set.get("engram.kafka.topic.input"), set.get("engram.kafka.topic.answers"));
    }

    /** Session ids of which {@link #SESSIONS_PER_SUBTASK} go to each keyed subtask (Flink's key-group assignment). */
    static List<String> sessionsOnEverySubtask(String run) {
        int maxParallelism = KeyGroupRangeAssignment.computeDefaultMaxParallelism(PARALLELISM);
        Map<Integer, List<String>> bySubtask = new HashMap<>();
        for (int i = 0;
                bySubtask.values().stream().mapToInt(List::size).sum() < PARALLELISM * SESSIONS_PER_SUBTASK;
                i++) {
            String id = "s" + i + "-" + run;
            List<String> l = bySubtask.computeIfAbsent(
                    KeyGroupRangeAssignment.assignKeyToParallelOperator(id, maxParallelism, PARALLELISM),
                    k -> new ArrayList<>());
            if (l.size() < SESSIONS_PER_SUBTASK) {
                l.add(id);
            }
        }
        return bySubtask.values().stream().flatMap(List::stream).sorted().toList();
    }

    /**
     * Before the job starts: every session's document, then the {@link #QUESTIONS} of every session (phase
     * {@value #FIRST}), flushed. Returns each session's document coordinates in the input topic.
     */
    static Map<String, List<SourceCoordinates>> produceStart(
            KafkaProducer<byte[], byte[]> producer, String topic, List<String> sessions, QueryLog queries)
            throws Exception {
        Map<String, List<SourceCoordinates>> content = new HashMap<>();
        for (String s : sessions) {
            content.put(s, produceDocument(producer, topic, s));
        }
        for (String s : sessions) {
            for (String q : QUESTIONS) {
                queries.ask(s, q, FIRST);
            }
        }
        producer.flush();
        return content;
    }

    /** Two document chunks with facts of session {@code s}; returns their coordinates in the input topic. */
    private static List<SourceCoordinates> produceDocument(
            KafkaProducer<byte[], byte[]> producer, String topic, String s) throws Exception {
        List<SourceCoordinates> out = new ArrayList<>();
        int code = Math.floorMod(s.hashCode(), 9000) + 1000;
        List<String> chunks = List.of(
                "The vault code of " + s + " is " + code + ".",
                "The keeper of " + s + " counted " + (code % 300) + " gulls.");
        for (int i = 0; i < chunks.size(); i++) {
            EngramEvent e = EngramEvent.newBuilder()
                    .setSessionId(s)
                    .setEventId("doc-" + s + "-" + i)
                    .setTimestampMs(System.currentTimeMillis())
                    .setPayload(ContentEvent.newBuilder()
                            .setKind(ContentKind.DOCUMENT_CHUNK)
                            .setText(chunks.get(i))
                            .setDocumentId("facts-" + s)
                            .setChunkIndex(i)
                            .build())
                    .build();
            RecordMetadata m = producer.send(record(topic, s, bytes(e))).get(30, TimeUnit.SECONDS);
            out.add(new SourceCoordinates(topic, m.partition(), m.offset()));
        }
        return out;
    }

    /** Idempotent, acks=all, no linger: a query leaves when it is asked. */
    static KafkaProducer<byte[], byte[]> producer(String bootstrapServers) {
        return new KafkaProducer<>(
                Map.of(
                        ProducerConfig.BOOTSTRAP_SERVERS_CONFIG,
                        bootstrapServers,
                        ProducerConfig.ACKS_CONFIG,
                        "all",
                        ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG,
                        true,
                        ProducerConfig.LINGER_MS_CONFIG,
                        0),
                new ByteArraySerializer(),
                new ByteArraySerializer());
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
        return EngramEvent.newBuilder()
                .setSessionId(session)
                .setEventId(queryId)
                .setTimestampMs(System.currentTimeMillis())
                .setPayload(new QueryEvent(
                        queryId,
                        question,
                        GenerationOptions.newBuilder().setMaxNewTokens(4).build()))
                .build();
    }

    /** Every query id answered once, and nothing else on the answers topic. */
    static void assertExactlyOnce(QueryLog queries, AnswerCollector answers) {
        Map<String, Long> counts =
                answers.all().stream().collect(Collectors.groupingBy(Answer::getQueryId, Collectors.counting()));
        Map<String, Long> duplicates = counts.entrySet().stream()
                .filter(e -> e.getValue() > 1)
                .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue));
        assertThat(duplicates)
                .as("queries answered more than once (query id -> answers)")
                .isEmpty();
        assertThat(counts.keySet())
                .as("answered query ids against the %d asked", queries.ids().size())
                .containsExactlyInAnyOrderElementsOf(queries.ids());
    }

    /**
     * Reports, per phase, the latency from sending a query to first seeing its committed answer (p50, p99, max), and
     * the same over every streamed query (all phases but {@value #FIRST} and {@code notStreamed}).
     */
    static void logLatencies(Report report, QueryLog queries, AnswerCollector answers, String... notStreamed) {
        Map<String, List<Long>> byPhase = new LinkedHashMap<>();
        for (String id : queries.ids()) {
            byPhase.computeIfAbsent(queries.phase(id), p -> new ArrayList<>())
                    .add(ms(answers.seenNanos(id) - queries.sentNanos(id)));
        }
        List<String> excluded = new ArrayList<>(List.of(notStreamed));
        excluded.add(FIRST);
        List<Long> streamed = byPhase.entrySet().stream()
                .filter(e -> !excluded.contains(e.getKey()))
                .flatMap(e -> e.getValue().stream())
                .toList();
        byPhase.forEach((phase, l) -> report.line(
                "METRIC answer-latency phase={} n={} p50={} ms p99={} ms max={} ms",
                phase,
                l.size(),
                percentile(l, 50),
                percentile(l, 99),
                percentile(l, 100)));
        report.line(
                "METRIC answer-latency streamed (all phases but {}) n={} p50={} ms p99={} ms max={} ms",
                excluded,
                streamed.size(),
                percentile(streamed, 50),
                percentile(streamed, 99),
                percentile(streamed, 100));
    }

    /** Nearest-rank percentile of {@code values} (not empty). */
    static long percentile(List<Long> values, int p) {
        List<Long> sorted = values.stream().sorted().toList();
        int i = (int) Math.ceil(p / 100.0 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
    }

    static long ms(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    /**
     * A test's report on stdout, which Failsafe passes through to the build's console: progress and the METRIC lines
     * ({@code grep METRIC} the build log). Not a logger: Flink's test jars (flink-runtime and others, through flink-test-utils) carry a
     * log4j2-test.properties that log4j prefers to our log4j2-test.xml, and it turns logging off.
     */
    record Report(String test) {
        void line(String format, Object... args) {
            String line = format;
            for (Object a : args) {
                line = line.replaceFirst("\\{\\}", Matcher.quoteReplacement(String.valueOf(a)));
            }
            System.out.printf("%tT [%s] %s%n", System.currentTimeMillis(), test, line);
        }
    }
}
