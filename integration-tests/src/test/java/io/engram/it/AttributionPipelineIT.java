package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionMethod;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.ControlAction;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SourceSegment;
import io.engram.schemas.Summary;
import io.engram.schemas.SummaryKind;
import io.engram.topology.EngineSessionStage;
import io.engram.topology.EngramJob;
import io.engram.topology.EngramSinks;
import io.engram.topology.EngramSources;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The production session stage ({@link EngineSessionStage}: session memory operator, then the precise attribution
 * operator) with a tiny generated model on a real broker and a MiniCluster with RocksDB, checkpoints and exactly-once
 * sinks: every answer once, with citations into its own session; for every answer one FAST and one PRECISE
 * attribution, linked by query id and session id, naming segments of that session's events; episode summaries as
 * memory grows, and one SESSION summary per REQUEST_SUMMARY control event, covering the session from its start.
 */
class AttributionPipelineIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        EngramSchemas.trustEngramClasses();
        model = TinyModels.write(KAFKA.newDir("model"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
    }

    static final String[] SESSIONS = {"ada", "bea"};

    static List<EngramEvent> stream() {
        List<EngramEvent> out = new ArrayList<>();
        for (int round = 0; round < 3; round++) {
            for (String id : SESSIONS) {
                out.add(event(
                        id,
                        id + "-c" + round,
                        ContentEvent.newBuilder()
                                .setKind(ContentKind.DOCUMENT_CHUNK)
                                .setText("Note " + round + " of " + id + ". The vault code is "
                                        + (4100 + 37 * round + id.length())
                                        + ". The keeper counted gulls on the cliffs. The lamp was lit at dusk.")
                                .build()));
            }
        }
        for (String id : SESSIONS) {
            out.add(event(
                    id,
                    id + "-q",
                    new QueryEvent(
                            id + "-q",
                            "What is the vault code?",
                            GenerationOptions.newBuilder()
                                    .setMaxNewTokens(4)
                                    .setTemperature(0f)
                                    .setStop(List.of())
                                    .build())));
            out.add(event(id, id + "-sum", new ControlEvent(ControlAction.REQUEST_SUMMARY)));
        }
        return out;
    }

    static EngramEvent event(String session, String id, Object payload) {
        return EngramEvent.newBuilder()
                .setSessionId(session)
                .setEventId(id)
                .setTimestampMs(1000L)
                .setPayload(payload)
                .build();
    }

    static <T> List<T> read(
            ResolvedOptions options, io.engram.topology.options.Option<String> topic, int n, Decoder<T> decode)
            throws Exception {
        try (KafkaConsumer<byte[], byte[]> c = KAFKA.readCommitted(options.get(topic))) {
            List<ConsumerRecord<byte[], byte[]>> recs =
                    KafkaBroker.pollUntil(c, r -> r.size() >= n, Duration.ofSeconds(180));
            recs.addAll(KafkaBroker.pollUntil(c, r -> false, Duration.ofSeconds(3))); // a duplicate would arrive now
            List<T> out = new ArrayList<>();
            for (ConsumerRecord<byte[], byte[]> r : recs) {
                out.add(decode.apply(r.value()));
            }
            return out;
        }
    }

    @FunctionalInterface
    interface Decoder<T> {
        T apply(byte[] b) throws Exception;
    }

    @Test
    void answersAttributionsAndSummariesAppearOnceEachLinkedByIds() throws Exception {
        ResolvedOptions options = KAFKA.newOptions(
                2,
                Map.ofEntries(
                        Map.entry("engram.model.dir", model.toString()),
                        Map.entry("engram.job.checkpoint-interval", "300ms"),
                        Map.entry(
                                "engram.job.checkpoint-dir",
                                KAFKA.newDir("checkpoints").toUri().toString()),
                        Map.entry("engram.job.parallelism", "2"),
                        Map.entry("engram.engine.block-size", "16"),
                        Map.entry("engram.engine.prefill-chunk", "32"),
                        Map.entry("engram.engine.summary-tokens", "6"),
                        Map.entry("engram.engine.summary-interval-tokens", "40"),
                        Map.entry("engram.attribution.tier", "BOTH"),
                        Map.entry("engram.attribution.segment-words", "6"),
                        Map.entry("engram.attribution.candidates", "6"),
                        Map.entry("engram.attribution.top-k", "3"),
                        Map.entry("engram.attribution.permutations", "1"),
                        Map.entry("engram.attribution.slice", "20ms")));
        Configuration conf = EngramJob.flinkConfiguration(options);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(2, conf);
        EngramJob.build(
                env,
                EngramSources.kafka(options),
                EngramSinks.kafka(options),
                options,
                EngineSessionStage.from(options));
        JobClient job = env.executeAsync("attribution-pipeline-it");
        try {
            List<EngramEvent> events = stream();
            KAFKA.produceEvents(options, events);
            Map<String, Set<String>> eventIds = new HashMap<>();
            for (EngramEvent e : events) {
                eventIds.computeIfAbsent(e.getSessionId(), k -> new HashSet<>()).add(e.getEventId());
            }

            List<Answer> answers = read(
                    options,
                    KafkaOptions.ANSWERS_TOPIC,
                    SESSIONS.length,
                    b -> Answer.getDecoder().decode(b));
            assertThat(answers).extracting(Answer::getQueryId).containsExactlyInAnyOrder("ada-q", "bea-q");
            for (Answer a : answers) {
                assertThat(a.getCitations()).isNotEmpty().hasSizeLessThanOrEqualTo(3);
                a.getCitations()
                        .forEach(c -> assertThat(eventIds.get(a.getSessionId()))
                                .contains(c.getSegment().getEventId()));
            }

            List<Attribution> attributions = read(
                    options,
                    KafkaOptions.ATTRIBUTIONS_TOPIC,
                    2 * SESSIONS.length,
                    b -> Attribution.getDecoder().decode(b));
            Set<String> seen = new HashSet<>();
            for (Attribution t : attributions) {
                assertThat(seen.add(t.getQueryId() + "/" + t.getMethod()))
                        .as("exactly one %s attribution of %s", t.getMethod(), t.getQueryId())
                        .isTrue();
                assertThat(t.getQueryId()).isEqualTo(t.getSessionId() + "-q");
                assertThat(t.getSegments()).isNotEmpty().hasSizeLessThanOrEqualTo(3);
                for (int i = 0; i < t.getSegments().size(); i++) {
                    SourceSegment s = t.getSegments().get(i);
                    assertThat(s.getRank()).isEqualTo(i + 1);
                    assertThat(eventIds.get(t.getSessionId())).contains(s.getEventId());
                    assertThat(s.getSource().getTopic()).isEqualTo(options.get(KafkaOptions.INPUT_TOPIC));
                    assertThat(s.getCharStart()).isLessThanOrEqualTo(s.getCharEnd());
                    assertThat(s.getExcerpt()).isNotBlank();
                }
            }
            assertThat(seen).containsExactlyInAnyOrder("ada-q/FAST", "ada-q/PRECISE", "bea-q/FAST", "bea-q/PRECISE");
            // the FAST record names the answer's citations, in order
            for (Answer a : answers) {
                Attribution fast = attributions.stream()
                        .filter(t -> t.getQueryId().equals(a.getQueryId()) && t.getMethod() == AttributionMethod.FAST)
                        .findFirst()
                        .orElseThrow();
                assertThat(fast.getSegments())
                        .containsExactlyElementsOf(a.getCitations().stream()
                                .map(c -> c.getSegment())
                                .toList());
            }

            List<Summary> summaries = read(
                    options,
                    KafkaOptions.SUMMARIES_TOPIC,
                    3 * SESSIONS.length,
                    b -> Summary.getDecoder().decode(b));
            for (String id : SESSIONS) {
                List<Summary> mine = summaries.stream()
                        .filter(s -> s.getSessionId().equals(id))
                        .toList();
                List<Summary> sessionSummaries = mine.stream()
                        .filter(s -> s.getKind() == SummaryKind.SESSION)
                        .toList();
                List<Summary> episodes = mine.stream()
                        .filter(s -> s.getKind() == SummaryKind.EPISODE)
                        .toList();
                assertThat(sessionSummaries)
                        .as("one SESSION summary for the control event of %s", id)
                        .hasSize(1);
                assertThat(episodes).as("episode summaries of %s", id).isNotEmpty();
                assertThat(episodes.stream()
                                .map(Summary::getFirstToken)
                                .distinct()
                                .count())
                        .as("no episode twice")
                        .isEqualTo(episodes.size());
                Summary s = sessionSummaries.get(0);
                assertThat(s.getFirstToken()).isZero();
                assertThat(s.getLastToken())
                        .isGreaterThanOrEqualTo(episodes.stream()
                                .mapToLong(Summary::getLastToken)
                                .max()
                                .orElseThrow());
                assertThat(s.getFirstEvent().getTopic()).isEqualTo(options.get(KafkaOptions.INPUT_TOPIC));
                assertThat(s.getFirstEvent().getOffset())
                        .isLessThanOrEqualTo(s.getLastEvent().getOffset());
                assertThat(mine.indexOf(s))
                        .as("the session summary comes after the episode summaries")
                        .isEqualTo(mine.size() - 1);
            }
        } finally {
            if (!job.getJobExecutionResult().isDone()) {
                job.cancel().get(30, TimeUnit.SECONDS);
            }
        }
    }
}
