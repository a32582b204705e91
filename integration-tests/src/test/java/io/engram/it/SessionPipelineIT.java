package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.operators.session.SessionMemoryOperator;
import io.engram.operators.session.SessionSettings;
import io.engram.schemas.Answer;
import io.engram.schemas.Citation;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.ControlAction;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.Summary;
import io.engram.topology.EngramJob;
import io.engram.topology.EngramSinks;
import io.engram.topology.EngramSources;
import io.engram.topology.KafkaOptions;
import io.engram.topology.SessionOutputs;
import io.engram.topology.SessionStage;
import io.engram.topology.options.ResolvedOptions;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The whole pipeline with the real engine (a tiny generated Llama with GQA), on a real broker and a MiniCluster with
 * the RocksDB backend, checkpoints and exactly-once sinks: several sessions interleaved, each with its own (and
 * contradicting) facts; every query answered exactly once, every citation pointing at an event of the query's own
 * session; a summary on request; a query for an unknown session dead-lettered. Then the same stream with the job
 * failing mid-stream and restarting from its last checkpoint must produce exactly the same answers, once each.
 */
class SessionPipelineIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        EngramSchemas.trustEngramClasses();
        model = TinyModels.write(KAFKA.newDir("model"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
    }

    static SessionSettings settings() {
        return SessionSettings.of(
                model.toString(),
                16,
                32,
                1,
                new SessionSettings.Answers(8, 8, 0),
                new SessionSettings.Batching(4, 50),
                SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20));
    }

    /**
     * Fails the task once (test fault injection): while processing event number {@code failAfter}, or, with
     * {@code inCheckpoint}, in the first checkpoint taken after that many events.
     */
    static final class FailOnce extends SessionMemoryOperator {
        static final AtomicInteger SEEN = new AtomicInteger();
        static volatile int failAfter = Integer.MAX_VALUE;
        static volatile boolean inCheckpoint;
        /** Fail in the notification that a checkpoint completed: after it is durable, before its Kafka commit is known. */
        static volatile boolean afterCheckpoint;

        static final java.util.concurrent.atomic.AtomicBoolean FAILED = new java.util.concurrent.atomic.AtomicBoolean();

        @Override
        public void snapshotState(org.apache.flink.runtime.state.StateSnapshotContext context) throws Exception {
            if (inCheckpoint && SEEN.get() >= failAfter && FAILED.compareAndSet(false, true)) {
                throw new IllegalStateException("injected failure during checkpoint " + context.getCheckpointId());
            }
            super.snapshotState(context);
        }

        FailOnce(SessionSettings s) {
            super(s);
        }

        @Override
        public void notifyCheckpointComplete(long checkpointId) throws Exception {
            if (afterCheckpoint && SEEN.get() >= failAfter && FAILED.compareAndSet(false, true)) {
                throw new IllegalStateException("injected failure after checkpoint " + checkpointId + " completed");
            }
            super.notifyCheckpointComplete(checkpointId);
        }

        @Override
        public void processElement(org.apache.flink.streaming.runtime.streamrecord.StreamRecord<EngramEvent> e)
                throws Exception {
            if (SEEN.incrementAndGet() == failAfter
                    && !inCheckpoint
                    && !afterCheckpoint
                    && FAILED.compareAndSet(false, true)) {
                throw new IllegalStateException("injected failure after " + failAfter + " events");
            }
            super.processElement(e);
        }
    }

    static SessionStage stage(boolean injectFailure) {
        return events -> {
            SingleOutputStreamOperator<Answer> answers = events.transform(
                            "session memory",
                            new AvroTypeInfo<>(Answer.class),
                            injectFailure ? new FailOnce(settings()) : new SessionMemoryOperator(settings()))
                    .uid("engram-session-memory");
            return new SessionOutputs(
                    answers,
                    answers.getSideOutput(SessionMemoryOperator.SUMMARIES),
                    answers.getSideOutput(SessionMemoryOperator.ATTRIBUTIONS),
                    answers.getSideOutput(SessionMemoryOperator.DEAD_LETTERS));
        };
    }

    static JobClient start(ResolvedOptions options, boolean injectFailure, Path checkpoints) throws Exception {
        Configuration conf = EngramJob.flinkConfiguration(options);
        if (injectFailure) {
            conf.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
            conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, 3);
            conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofMillis(200));
        } else {
            conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(2, conf);
        EngramJob.build(env, EngramSources.kafka(options), EngramSinks.kafka(options), options, stage(injectFailure));
        return env.executeAsync("session-pipeline-it");
    }

    static ResolvedOptions options() throws Exception {
        return KAFKA.newOptions(
                2,
                Map.of(
                        "engram.job.checkpoint-interval", "300ms",
                        "engram.job.checkpoint-dir",
                                KAFKA.newDir("checkpoints").toUri().toString(),
                        "engram.job.parallelism", "2"));
    }

    static final String[] SESSIONS = {"alice", "bob", "carol"};

    /** The input stream: interleaved content per session (contradicting facts), queries among them. */
    static List<EngramEvent> stream() {
        List<EngramEvent> out = new ArrayList<>();
        for (int round = 0; round < 3; round++) {
            for (int s = 0; s < SESSIONS.length; s++) {
                String id = SESSIONS[s];
                out.add(event(
                        id,
                        id + "-c" + round,
                        ContentEvent.newBuilder()
                                .setKind(ContentKind.DOCUMENT_CHUNK)
                                .setText("In the notes of " + id + ", the vault code is " + (7481 + 111 * s + round)
                                        + ". The keeper counted " + (200 + s * 10 + round) + " gulls on the cliffs.")
                                .build()));
                if (round > 0) {
                    out.add(event(
                            id,
                            id + "-q" + round,
                            new QueryEvent(
                                    id + "-q" + round,
                                    "What is the vault code?",
                                    GenerationOptions.newBuilder()
                                            .setMaxNewTokens(6)
                                            .setTemperature(0f)
                                            .setStop(List.of())
                                            .build())));
                }
            }
        }
        out.add(event("bob", "bob-sum", new ControlEvent(ControlAction.REQUEST_SUMMARY)));
        out.add(event(
                "nobody",
                "nobody-q",
                new QueryEvent(
                        "nobody-q",
                        "Anyone there?",
                        GenerationOptions.newBuilder()
                                .setMaxNewTokens(4)
                                .setTemperature(0f)
                                .setStop(List.of())
                                .build())));
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

    static void produce(ResolvedOptions options, List<EngramEvent> events) throws Exception {
        KAFKA.produceEvents(options, events);
    }

    static <T> List<T> read(
            ResolvedOptions options,
            io.engram.topology.options.Option<String> topic,
            int n,
            java.util.function.Function<byte[], T> decode) {
        try (KafkaConsumer<byte[], byte[]> c = KAFKA.readCommitted(options.get(topic))) {
            List<ConsumerRecord<byte[], byte[]>> recs =
                    KafkaBroker.pollUntil(c, r -> r.size() >= n, Duration.ofSeconds(120));
            // anything beyond n would be a duplicate: poll a little longer to catch it
            recs.addAll(KafkaBroker.pollUntil(c, r -> false, Duration.ofSeconds(2)));
            return recs.stream().map(r -> decode.apply(r.value())).toList();
        }
    }

    static Answer answer(byte[] b) {
        try {
            return Answer.getDecoder().decode(b);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    /** Runs the stream and returns answer text by query id (asserting exactly-once and isolation on the way). */
    enum Failure {
        NONE,
        WHILE_PROCESSING,
        DURING_CHECKPOINT,
        AFTER_CHECKPOINT_COMPLETED
    }

    static Map<String, String> runAndCheck(Failure failure) throws Exception {
        boolean injectFailure = failure != Failure.NONE;
        ResolvedOptions options = options();
        FailOnce.SEEN.set(0);
        FailOnce.FAILED.set(false);
        FailOnce.failAfter = injectFailure ? 11 : Integer.MAX_VALUE;
        FailOnce.inCheckpoint = failure == Failure.DURING_CHECKPOINT;
        FailOnce.afterCheckpoint = failure == Failure.AFTER_CHECKPOINT_COMPLETED;
        JobClient job = start(options, injectFailure, null);
        try {
            List<EngramEvent> events = stream();
            produce(options, events.subList(0, 8));
            produce(options, events.subList(8, events.size()));
            int queries = (int) events.stream()
                    .filter(e -> e.getPayload() instanceof QueryEvent
                            && !e.getSessionId().equals("nobody"))
                    .count();
            List<Answer> answers = read(options, KafkaOptions.ANSWERS_TOPIC, queries, SessionPipelineIT::answer);
            var result = job.getJobExecutionResult();
            if (result.isDone()) {
                result.get(1, TimeUnit.SECONDS); // rethrows the job's failure, which says more than a missing answer
                throw new AssertionError("the job ended early; answers so far: " + answers.size());
            }
            Map<String, String> byQuery = new HashMap<>();
            for (Answer a : answers) {
                // the answer text and the fingerprint of the memory it was computed over
                assertThat(byQuery.put(
                                a.getQueryId(),
                                a.getText() + " | memory " + a.getMemory().getFingerprint()))
                        .as("exactly one answer for %s", a.getQueryId())
                        .isNull();
                assertThat(a.getMemory().getFingerprint()).hasSize(8);
                assertThat(a.getQueryId()).startsWith(a.getSessionId() + "-");
                assertThat(a.getCitations())
                        .as("citations of %s", a.getQueryId())
                        .isNotEmpty();
                for (Citation c : a.getCitations()) {
                    assertThat(c.getSegment().getEventId())
                            .as("answer %s cites only its own session", a.getQueryId())
                            .startsWith(a.getSessionId() + "-c");
                    assertThat(c.getSegment().getSource().getTopic()).isEqualTo(options.get(KafkaOptions.INPUT_TOPIC));
                    assertThat(c.getSegment().getExcerpt()).isNotEmpty();
                }
                assertThat(a.getMemoryTokens()).isPositive();
            }
            assertThat(byQuery).hasSize(queries);
            List<Summary> summaries = read(options, KafkaOptions.SUMMARIES_TOPIC, 1, b -> {
                try {
                    return Summary.getDecoder().decode(b);
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            assertThat(summaries)
                    .singleElement()
                    .satisfies(s -> assertThat(s.getSessionId()).isEqualTo("bob"));
            List<DeadLetter> dead = read(options, KafkaOptions.DEAD_LETTER_TOPIC, 1, b -> {
                try {
                    return DeadLetter.getDecoder().decode(b);
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            assertThat(dead).singleElement().satisfies(d -> {
                assertThat(d.getErrorClass()).isEqualTo(ErrorClass.UNKNOWN_SESSION);
                assertThat(d.getSessionId()).isEqualTo("nobody");
            });
            assertThat(job.getJobStatus().get(10, TimeUnit.SECONDS)).isEqualTo(JobStatus.RUNNING);
            if (injectFailure) {
                assertThat(FailOnce.FAILED).as("the failure was injected").isTrue();
                if (failure != Failure.AFTER_CHECKPOINT_COMPLETED) { // that restore starts at the completed checkpoint
                    assertThat(FailOnce.SEEN.get())
                            .as("events were replayed after the restart")
                            .isGreaterThan(events.size());
                }
            }
            return byQuery;
        } finally {
            if (!job.getJobExecutionResult().isDone()) {
                job.cancel().get(30, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void sessionsAreAnsweredExactlyOnceWithOwnCitationsAndAFailureChangesNothing() throws Exception {
        Map<String, String> clean = runAndCheck(Failure.NONE);
        // same answers over byte-identical memory (CRC32C of every stored block), once each
        assertThat(runAndCheck(Failure.WHILE_PROCESSING))
                .as(
                        "answers and memory fingerprints after a failure while processing and a restart from the last checkpoint")
                .isEqualTo(clean);
        assertThat(runAndCheck(Failure.DURING_CHECKPOINT))
                .as("answers and memory fingerprints after a failure during a checkpoint and a restart")
                .isEqualTo(clean);
        // a crash between a checkpoint's completion and the sinks learning of it: their transactions of that checkpoint
        // are committed on restore from it, nothing is lost or written twice
        assertThat(runAndCheck(Failure.AFTER_CHECKPOINT_COMPLETED))
                .as("answers and memory fingerprints after a failure once a checkpoint completed")
                .isEqualTo(clean);
    }
}
