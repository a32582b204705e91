package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.Answer;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.flink.core.execution.JobClient;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A long content event does not hold checkpoints back: the decoder cuts it into parts, the session operator ingests one
 * part per call, and the checkpoint barrier (unaligned once alignment waits) passes the parts still queued. While one
 * ~50K-token event is ingested, checkpoints keep completing (their folders appear every fraction of a second; with the event whole they
 * stall for its prefill), and the question after it is answered over all of it.
 */
class LongEventIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        io.engram.schemas.EngramSchemas.trustEngramClasses();
        model = io.engram.engine.model.synthetic.TinyModels.write(
                KAFKA.newDir("model"),
                io.engram.engine.model.synthetic.TinyModels.Variant.LLAMA_GQA,
                io.engram.engine.tensor.DType.F32,
                42);
    }

    static JobClient start(ResolvedOptions options) throws Exception {
        org.apache.flink.configuration.Configuration conf = io.engram.topology.EngramJob.flinkConfiguration(options);
        conf.set(org.apache.flink.configuration.RestartStrategyOptions.RESTART_STRATEGY, "none");
        var env = org.apache.flink.streaming.api.environment.StreamExecutionEnvironment.createLocalEnvironment(1, conf);
        io.engram.operators.session.SessionSettings settings = io.engram.operators.session.SessionSettings.of(
                model.toString(),
                16,
                32,
                1,
                new io.engram.operators.session.SessionSettings.Answers(4, 4, 0),
                new io.engram.operators.session.SessionSettings.Batching(4, 20),
                io.engram.operators.session.SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20));
        io.engram.topology.SessionStage stage = events -> {
            var answers = events.transform(
                            "session memory",
                            new org.apache.flink.formats.avro.typeutils.AvroTypeInfo<>(Answer.class),
                            new io.engram.operators.session.SessionMemoryOperator(settings))
                    .uid("engram-session-memory");
            return new io.engram.topology.SessionOutputs(
                    answers,
                    answers.getSideOutput(io.engram.operators.session.SessionMemoryOperator.SUMMARIES),
                    answers.getSideOutput(io.engram.operators.session.SessionMemoryOperator.ATTRIBUTIONS),
                    answers.getSideOutput(io.engram.operators.session.SessionMemoryOperator.DEAD_LETTERS));
        };
        io.engram.topology.EngramJob.build(
                env,
                io.engram.topology.EngramSources.kafka(options),
                io.engram.topology.EngramSinks.kafka(options),
                options,
                stage);
        return env.executeAsync("long-event-it");
    }

    static EngramEvent event(String id, Object payload) {
        return EngramEvent.newBuilder()
                .setSessionId("s")
                .setEventId(id)
                .setTimestampMs(1000L)
                .setPayload(payload)
                .build();
    }

    static List<Answer> answers(ResolvedOptions options, int n) {
        try (var c = KAFKA.readCommitted(options.get(KafkaOptions.ANSWERS_TOPIC))) {
            return KafkaBroker.pollUntil(c, r -> r.size() >= n, Duration.ofSeconds(180)).stream()
                    .map(r -> {
                        try {
                            return Answer.getDecoder().decode(r.value());
                        } catch (Exception e) {
                            throw new AssertionError(e);
                        }
                    })
                    .toList();
        }
    }

    /** The highest completed checkpoint number under {@code dir} (0 when none). */
    static long lastCheckpoint(Path dir) throws Exception {
        if (!Files.isDirectory(dir)) {
            return 0;
        }
        try (Stream<Path> s = Files.walk(dir, 3)) {
            return s.filter(p -> p.getFileName().toString().equals("_metadata"))
                    .map(p -> p.getParent().getFileName().toString())
                    .filter(n -> n.startsWith("chk-"))
                    .mapToLong(n -> Long.parseLong(n.substring(4)))
                    .max()
                    .orElse(0);
        }
    }

    @Test
    void checkpointsCompleteWhileALongEventIsIngested() throws Exception {
        Path checkpoints = KAFKA.newDir("checkpoints");
        ResolvedOptions options = KAFKA.newOptions(
                1,
                Map.of(
                        "engram.job.checkpoint-interval", "200ms",
                        "engram.job.checkpoint-dir", checkpoints.toUri().toString(),
                        "engram.job.aligned-checkpoint-timeout", "100ms",
                        "engram.job.parallelism", "1",
                        "engram.decoder.part-chars", "1000",
                        "engram.decoder.max-event-bytes", String.valueOf(4 << 20)));
        JobClient job = start(options);
        try {
            GenerationOptions greedy = GenerationOptions.newBuilder()
                    .setMaxNewTokens(4)
                    .setTemperature(0f)
                    .setStop(List.of())
                    .build();
            KAFKA.produceEvents(
                    options,
                    List.of(
                            event(
                                    "warm",
                                    ContentEvent.newBuilder()
                                            .setKind(ContentKind.DOCUMENT_CHUNK)
                                            .setText("The vault code is 7481.")
                                            .build()),
                            event("q0", new QueryEvent("q0", "What is the code?", greedy))));
            answers(options, 1);

            String text = "The keeper counted the gulls on the cliffs and wrote the number in the log. ".repeat(2000);
            long before = lastCheckpoint(checkpoints);
            long t0 = System.nanoTime();
            KAFKA.produceEvents(
                    options,
                    List.of(
                            event(
                                    "long",
                                    ContentEvent.newBuilder()
                                            .setKind(ContentKind.DOCUMENT_CHUNK)
                                            .setText(text)
                                            .build()),
                            event("q1", new QueryEvent("q1", "What is the code?", greedy))));
            // the answer to q1 becomes visible once the checkpoint after it completes: meanwhile, note when each new
            // checkpoint completes; the longest gap between two is how long checkpoints were held back
            long[] last = {before};
            long[] lastAt = {System.nanoTime()};
            long[] longestGap = {0};
            List<Answer> answers;
            Thread watcher = Thread.ofVirtual().start(() -> {
                while (!Thread.currentThread().isInterrupted()) {
                    try {
                        long n = lastCheckpoint(checkpoints);
                        long now = System.nanoTime();
                        if (n > last[0]) {
                            longestGap[0] = Math.max(longestGap[0], now - lastAt[0]);
                            last[0] = n;
                            lastAt[0] = now;
                        }
                        Thread.sleep(20);
                    } catch (InterruptedException e) {
                        return;
                    } catch (Exception e) {
                        // a folder deleted while walking it: look again
                    }
                }
            });
            try {
                answers = answers(options, 2);
            } finally {
                watcher.interrupt();
                watcher.join();
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            Answer a = answers.stream()
                    .filter(x -> x.getQueryId().equals("q1"))
                    .findFirst()
                    .orElseThrow();
            assertThat(a.getMemoryTokens())
                    .as("q1 attends over the whole long event")
                    .isGreaterThan(text.length() / 4);
            long completed = last[0] - before;
            double gap = longestGap[0] / 1e9;
            System.out.printf(
                    "LongEventIT: %d chars (%d memory tokens) ingested and answered in %.1f s; %d checkpoints "
                            + "completed meanwhile, at most %.2f s apart%n",
                    text.length(), a.getMemoryTokens(), seconds, completed, gap);
            assertThat(seconds)
                    .as("the ingest takes long enough to tell (else make the text longer)")
                    .isGreaterThan(4.0);
            assertThat(completed)
                    .as("checkpoints completed while the long event was ingested")
                    .isGreaterThanOrEqualTo(5);
            assertThat(gap)
                    .as("longest time between two checkpoints while the long event was ingested (%.1f s)", seconds)
                    .isLessThan(seconds / 3);
        } finally {
            job.cancel().get();
        }
    }
}
