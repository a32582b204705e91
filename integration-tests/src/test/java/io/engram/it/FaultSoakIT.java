package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.operators.session.SessionFaults;
import io.engram.operators.session.SessionMemoryOperator;
import io.engram.operators.session.SessionSettings;
import io.engram.schemas.Answer;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
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
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
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
 * The fault-injection soak, sized for CI: several sessions streamed with questions while the session operator fails on
 * purpose at random ingests and answers (engram.faults.*: each is dead-lettered) and the whole task crashes once and
 * restarts from its last checkpoint. Afterwards every query has exactly one outcome (an answer or a dead letter), every
 * content event was either applied or dead-lettered once, and every answer equals, text and memory fingerprint, the
 * answer of a run without any fault over the same stream minus the dead-lettered events: nothing lost, nothing twice,
 * no session disturbed by another's failures.
 */
class FaultSoakIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        EngramSchemas.trustEngramClasses();
        model = TinyModels.write(KAFKA.newDir("model"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
    }

    static final String[] SESSIONS = {"ada", "ben", "cyd", "dee"};
    static final int ROUNDS = 6;
    static final SessionFaults FAULTS =
            new SessionFaults(Set.of(SessionFaults.Point.INGEST, SessionFaults.Point.ANSWER), 0.2, 11, Set.of(), 0);

    /** Crashes the task once, after {@code CRASH_AFTER} events, so the job restarts from its last checkpoint. */
    static final class CrashOnce extends SessionMemoryOperator {
        static final int CRASH_AFTER = 25;
        static final AtomicInteger SEEN = new AtomicInteger();
        static final AtomicBoolean CRASHED = new AtomicBoolean();

        CrashOnce(SessionSettings s, SessionFaults f) {
            super(s, f);
        }

        @Override
        public void processElement(org.apache.flink.streaming.runtime.streamrecord.StreamRecord<EngramEvent> e)
                throws Exception {
            if (SEEN.incrementAndGet() == CRASH_AFTER && CRASHED.compareAndSet(false, true)) {
                throw new IllegalStateException("soak: task crash after " + CRASH_AFTER + " events");
            }
            super.processElement(e);
        }
    }

    static List<EngramEvent> stream() {
        List<EngramEvent> out = new ArrayList<>();
        for (int round = 0; round < ROUNDS; round++) {
            for (int s = 0; s < SESSIONS.length; s++) {
                String id = SESSIONS[s];
                out.add(event(
                        id,
                        id + "-c" + round,
                        ContentEvent.newBuilder()
                                .setKind(ContentKind.DIALOGUE_TURN)
                                .setText("Turn " + round + " of " + id + ": the vault code is "
                                        + (1000 + 37 * s + round) + " and the ferry leaves at " + (6 + round) + ".")
                                .setRole("user")
                                .build()));
                if (round > 0) {
                    out.add(event(
                            id,
                            id + "-q" + round,
                            new QueryEvent(
                                    id + "-q" + round,
                                    "What is the vault code?",
                                    GenerationOptions.newBuilder()
                                            .setMaxNewTokens(5)
                                            .setTemperature(0f)
                                            .setStop(List.of())
                                            .build())));
                }
            }
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

    record Outcome(Map<String, Answer> answers, Map<String, DeadLetter> dead) {}

    static Outcome run(List<EngramEvent> events, boolean faults) throws Exception {
        ResolvedOptions options = KAFKA.newOptions(
                2,
                Map.of(
                        "engram.job.checkpoint-interval",
                        "300ms",
                        "engram.job.checkpoint-dir",
                        KAFKA.newDir("checkpoints").toUri().toString(),
                        "engram.job.parallelism",
                        "2"));
        SessionSettings settings = SessionSettings.of(
                model.toString(),
                16,
                32,
                1,
                new SessionSettings.Answers(8, 8, 0),
                new SessionSettings.Batching(4, 50),
                SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20));
        SessionStage stage = in -> {
            SingleOutputStreamOperator<Answer> answers = in.transform(
                            "session memory",
                            new AvroTypeInfo<>(Answer.class),
                            faults ? new CrashOnce(settings, FAULTS) : new SessionMemoryOperator(settings))
                    .uid("engram-session-memory");
            return new SessionOutputs(
                    answers,
                    answers.getSideOutput(SessionMemoryOperator.SUMMARIES),
                    answers.getSideOutput(SessionMemoryOperator.ATTRIBUTIONS),
                    answers.getSideOutput(SessionMemoryOperator.DEAD_LETTERS));
        };
        Configuration conf = EngramJob.flinkConfiguration(options);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, faults ? "fixed-delay" : "none");
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, 2);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofMillis(200));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(2, conf);
        EngramJob.build(env, EngramSources.kafka(options), EngramSinks.kafka(options), options, stage);
        CrashOnce.SEEN.set(0);
        CrashOnce.CRASHED.set(false);
        JobClient job = env.executeAsync("fault-soak-it");
        try {
            KAFKA.produceEvents(options, events.subList(0, events.size() / 2));
            KAFKA.produceEvents(options, events.subList(events.size() / 2, events.size()));
            Set<String> queries = new HashSet<>();
            Set<String> contents = new HashSet<>();
            for (EngramEvent e : events) {
                (e.getPayload() instanceof QueryEvent ? queries : contents).add(e.getEventId());
            }
            Map<String, Answer> answers = new HashMap<>();
            Map<String, DeadLetter> dead = new HashMap<>();
            try (KafkaConsumer<byte[], byte[]> a = KAFKA.readCommitted(options.get(KafkaOptions.ANSWERS_TOPIC));
                    KafkaConsumer<byte[], byte[]> d =
                            KAFKA.readCommitted(options.get(KafkaOptions.DEAD_LETTER_TOPIC))) {
                long deadline = System.nanoTime() + Duration.ofSeconds(150).toNanos();
                while (System.nanoTime() < deadline && !allQueriesSettled(queries, answers, dead)) {
                    for (ConsumerRecord<byte[], byte[]> r : a.poll(Duration.ofMillis(200))) {
                        Answer x = Answer.getDecoder().decode(r.value());
                        assertThat(answers.put(x.getQueryId(), x))
                                .as("one answer for %s", x.getQueryId())
                                .isNull();
                    }
                    for (ConsumerRecord<byte[], byte[]> r : d.poll(Duration.ofMillis(200))) {
                        DeadLetter x = DeadLetter.getDecoder().decode(r.value());
                        assertThat(dead.put(x.getEventId(), x))
                                .as("one dead letter for %s", x.getEventId())
                                .isNull();
                    }
                }
                // anything more would be a duplicate
                for (int i = 0; i < 10; i++) {
                    assertThat(a.poll(Duration.ofMillis(200)))
                            .as("no further answers")
                            .isEmpty();
                    assertThat(d.poll(Duration.ofMillis(100)))
                            .as("no further dead letters")
                            .isEmpty();
                }
            }
            assertThat(job.getJobStatus().get(10, TimeUnit.SECONDS)).isEqualTo(JobStatus.RUNNING);
            for (String q : queries) {
                assertThat(answers.containsKey(q) ^ dead.containsKey(q))
                        .as("query %s: exactly one outcome", q)
                        .isTrue();
            }
            for (DeadLetter x : dead.values()) {
                if (x.getErrorClass() == ErrorClass.UNKNOWN_SESSION) { // every content of its session failed before it
                    assertThat(queries).as("only queries find no memory").contains(x.getEventId());
                } else {
                    assertThat(x.getErrorClass()).as("%s", x.getEventId()).isEqualTo(ErrorClass.PROCESSING_FAILED);
                    assertThat(x.getException()).contains("InjectedFault");
                    assertThat(queries.contains(x.getEventId()) || contents.contains(x.getEventId()))
                            .isTrue();
                }
            }
            return new Outcome(answers, dead);
        } finally {
            if (!job.getJobExecutionResult().isDone()) {
                job.cancel().get(30, TimeUnit.SECONDS);
            }
        }
    }

    static boolean allQueriesSettled(Set<String> queries, Map<String, Answer> answers, Map<String, DeadLetter> dead) {
        for (String q : queries) {
            if (!answers.containsKey(q) && !dead.containsKey(q)) {
                return false;
            }
        }
        return true;
    }

    @Test
    void injectedFailuresAndACrashLoseNothingDuplicateNothingAndDisturbNoOtherSession() throws Exception {
        List<EngramEvent> events = stream();
        Outcome faulty = run(events, true);
        assertThat(CrashOnce.CRASHED).as("the task crashed once and restarted").isTrue();
        Set<String> injected = new HashSet<>();
        Set<String> unknown = new HashSet<>();
        faulty.dead()
                .forEach((id, d) -> (d.getErrorClass() == ErrorClass.PROCESSING_FAILED ? injected : unknown).add(id));
        long deadContent = injected.stream().filter(id -> id.contains("-c")).count();
        long deadQueries = injected.size() - deadContent;
        assertThat(deadContent).as("some ingests failed").isPositive();
        assertThat(deadQueries).as("some answers failed").isPositive();
        assertThat(faulty.answers()).as("most queries answered").hasSizeGreaterThan(5);

        // the same stream without the events the faulty run dead-lettered, and without any fault
        List<EngramEvent> clean =
                events.stream().filter(e -> !injected.contains(e.getEventId())).toList();
        Outcome reference = run(clean, false);
        assertThat(reference.dead().keySet())
                .as("the same queries find no memory")
                .isEqualTo(unknown);
        assertThat(reference.answers().keySet()).isEqualTo(faulty.answers().keySet());
        faulty.answers().forEach((q, a) -> {
            Answer r = reference.answers().get(q);
            assertThat(a.getText()).as("answer to %s", q).isEqualTo(r.getText());
            assertThat(a.getMemory().getFingerprint())
                    .as("memory behind %s", q)
                    .isEqualTo(r.getMemory().getFingerprint());
            assertThat(a.getMemoryTokens()).isEqualTo(r.getMemoryTokens());
        });
        System.out.printf(
                "fault soak: %d events, %d queries answered, %d content and %d queries dead-lettered "
                        + "(injected), 1 task crash and restore, duplicates 0, lost 0%n",
                events.size(), faulty.answers().size(), deadContent, deadQueries);
    }
}
