package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.schemas.Answer;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SessionIndex;
import io.engram.state.codec.KvBlockCodec;
import io.engram.state.flink.SavepointMemoryReader;
import io.engram.state.store.StoredSession;
import io.engram.topology.EngineSessionStage;
import io.engram.topology.EngramJob;
import io.engram.topology.EngramSinks;
import io.engram.topology.EngramSources;
import io.engram.topology.JobOptions;
import io.engram.topology.KafkaOptions;
import io.engram.topology.SessionStageFactory;
import io.engram.topology.cli.CliContext;
import io.engram.topology.cli.EngramCli;
import io.engram.topology.options.ResolvedOptions;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.configuration.StateRecoveryOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Durable memory across stop-with-savepoint and restore, with the production session stage on a real broker and a
 * MiniCluster with the RocksDB backend: several sessions ingest content at parallelism 2, the job stops with a
 * savepoint, then restarts from it at parallelism 2, 1 and 3 in turn (each hop stopping with a new savepoint). The
 * memory read out of every savepoint's keyed state (State Processor API, by the operator's uid) is byte-identical per
 * session, and after every restore the same question gets the same answer over memory with the fingerprint of the
 * stored blocks. A retained checkpoint of a cancelled run holds the same memory, and {@code engram state inspect} lists
 * it (JSON and text).
 */
class SavepointRestoreIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    static final String[] SESSIONS = {"ada", "bo", "cy", "dee", "eli"};
    static final String QUESTION = "What is the vault code?";

    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        EngramSchemas.trustEngramClasses();
        model = TinyModels.write(KAFKA.newDir("model"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
    }

    /** The tiny model on the test broker with small blocks, short answers and frequent checkpoints. */
    static ResolvedOptions jobOptions() throws Exception {
        return jobOptions(KAFKA, model);
    }

    /** {@link #jobOptions()} on {@code kafka} with the model at {@code model}. */
    static ResolvedOptions jobOptions(KafkaBroker kafka, Path model) throws Exception {
        return kafka.newOptions(
                2,
                Map.of(
                        "engram.model.dir", model.toString(),
                        "engram.engine.block-size", "16",
                        "engram.engine.prefill-chunk", "32",
                        "engram.engine.max-new-tokens", "6",
                        "engram.engine.batch-window", "0ms",
                        "engram.job.checkpoint-interval", "500ms",
                        "engram.job.checkpoint-dir",
                                kafka.newDir("checkpoints").toUri().toString()));
    }

    @Test
    void memoryIsByteIdenticalAcrossSavepointsAndRescalingAndStillAnswers() throws Exception {
        ResolvedOptions base = jobOptions();
        // EM-LLM with a small window: the sessions' policy state (events, boundaries) is saved and restored too
        base = base.with(Map.of(
                "engram.memory.policy",
                "EMLLM",
                "engram.memory.init-tokens",
                "4",
                "engram.memory.local-tokens",
                "32",
                "engram.memory.memory-tokens",
                "32",
                "engram.memory.event-min-tokens",
                "4",
                "engram.memory.event-max-tokens",
                "24"));
        Path savepoints = KAFKA.newDir("savepoints");

        JobClient first = start(base, 2, null);
        List<EngramEvent> content = new ArrayList<>();
        for (int round = 0; round < 3; round++) {
            for (int s = 0; s < SESSIONS.length; s++) {
                String id = SESSIONS[s];
                content.add(event(
                        id,
                        id + "-c" + round,
                        ContentEvent.newBuilder()
                                .setKind(ContentKind.DOCUMENT_CHUNK)
                                .setText("Page " + round + " of " + id + ": the vault code is "
                                        + (3100 + 97 * s + round) + ", and the lighthouse keeper counted "
                                        + (40 + 7 * s + round) + " gulls at dawn.")
                                .build()));
            }
        }
        produce(base, content);
        Map<String, Answer> baseline = ask(base, first, "r0");
        Path sp = stopWithSavepoint(first, savepoints);
        Map<String, StoredSession> stored =
                StoredSession.byId(SavepointMemoryReader.read(sp, EngramJob.SESSION_MEMORY_UID));
        assertThat(stored.keySet()).as("sessions in the first savepoint").containsExactlyInAnyOrder(SESSIONS);
        for (StoredSession s : stored.values()) {
            checkConsistent(s);
            assertThat(fingerprint(s.index()))
                    .as("answer of %s was computed over the stored memory", s.session())
                    .isEqualTo(baseline.get(s.session()).getMemory().getFingerprint());
        }

        int hop = 0;
        for (int parallelism : new int[] {2, 1, 3}) {
            hop++;
            JobClient job = start(base, parallelism, sp);
            Map<String, Answer> again = ask(base, job, "r" + hop);
            for (String s : SESSIONS) {
                assertThat(again.get(s).getText())
                        .as("answer of %s after restore at parallelism %d", s, parallelism)
                        .isEqualTo(baseline.get(s).getText());
                assertThat(again.get(s).getMemory())
                        .as("memory of %s after restore at parallelism %d", s, parallelism)
                        .isEqualTo(baseline.get(s).getMemory());
            }
            sp = stopWithSavepoint(job, savepoints);
            Map<String, StoredSession> now =
                    StoredSession.byId(SavepointMemoryReader.read(sp, EngramJob.SESSION_MEMORY_UID));
            assertThat(now.keySet())
                    .as("sessions after the hop to parallelism %d", parallelism)
                    .isEqualTo(stored.keySet());
            for (StoredSession s : now.values()) {
                assertThat(s.sameContent(stored.get(s.session())))
                        .as("index and unit bytes of %s after the hop to parallelism %d", s.session(), parallelism)
                        .isTrue();
            }
        }

        // a retained (incremental, native RocksDB) checkpoint of a cancelled job holds the same memory, and the CLI
        // reads it
        JobClient last = start(base, 2, sp);
        Path jobCheckpoints = Path.of(URI.create(base.get(JobOptions.CHECKPOINT_DIR)))
                .resolve(last.getJobID().toString());
        assertThat(KafkaBroker.await(() -> latestCheckpoint(jobCheckpoints) != null, Duration.ofSeconds(60)))
                .as("a checkpoint completes in %s", jobCheckpoints)
                .isTrue();
        last.cancel().get(60, TimeUnit.SECONDS);
        KafkaBroker.await(() -> last.getJobExecutionResult().isDone(), Duration.ofSeconds(60));
        Path checkpoint = latestCheckpoint(jobCheckpoints);
        assertThat(checkpoint).as("retained checkpoint").isNotNull();
        Map<String, StoredSession> fromCheckpoint =
                StoredSession.byId(SavepointMemoryReader.read(checkpoint, EngramJob.SESSION_MEMORY_UID));
        assertThat(fromCheckpoint.keySet()).isEqualTo(stored.keySet());
        fromCheckpoint
                .values()
                .forEach(s -> assertThat(s.sameContent(stored.get(s.session())))
                        .as("%s in %s", s.session(), checkpoint)
                        .isTrue());
        inspectWithCli(checkpoint, stored);
    }

    /**
     * One byte of one stored block is damaged inside a savepoint file; the job restored from it quarantines that block
     * (a CORRUPT_MEMORY dead letter naming the session, the block and both checksums), keeps the session answering from
     * the rest of its memory, and the other sessions answer exactly as before.
     */
    @Test
    void aBlockDamagedInASavepointIsQuarantinedAndTheSessionStillAnswers() throws Exception {
        ResolvedOptions base = jobOptions().with(Map.of("engram.state.kv-dtype", "F32"));
        JobClient first = start(base, 1, null);
        List<EngramEvent> content = new ArrayList<>();
        for (int s = 0; s < SESSIONS.length; s++) {
            String id = SESSIONS[s];
            content.add(event(
                    id,
                    id + "-c",
                    ContentEvent.newBuilder()
                            .setKind(ContentKind.DOCUMENT_CHUNK)
                            .setText("The notes of " + id + ": the vault code is " + (3100 + 97 * s)
                                    + ", and the lighthouse keeper counted " + (40 + 7 * s)
                                    + " gulls at dawn before the boats went out to the far banks.")
                            .build()));
        }
        produce(base, content);
        Map<String, Answer> baseline = ask(base, first, "before");
        Path sp = stopWithSavepoint(first, KAFKA.newDir("savepoints"));

        // block 1 of some session (id 1, first sequence index 16, 16 slots, F32): its header is unique per session;
        // flip
        // a byte of its K/V values, past the header and the per-token metadata, so that the header reads but the CRC
        // fails
        byte[] header = ByteBuffer.allocate(1 + 1 + 8 + 8 + 4)
                .order(ByteOrder.LITTLE_ENDIAN)
                .put(KvBlockCodec.VERSION)
                .put((byte) 0 /* F32 */)
                .putLong(1)
                .putLong(16)
                .putInt(16)
                .array();
        boolean damaged = false;
        try (var files = Files.walk(sp)) {
            for (Path f : files.filter(Files::isRegularFile)
                    .filter(f -> !f.getFileName().toString().equals("_metadata"))
                    .toList()) {
                byte[] bytes = Files.readAllBytes(f);
                int at = indexOf(bytes, header);
                if (at >= 0) {
                    bytes[at + 34 + 16 * (4 + 4 + 8 + 4) + 5] ^= 0x40;
                    Files.write(f, bytes);
                    damaged = true;
                    break;
                }
            }
        }
        assertThat(damaged).as("a stored block found in the savepoint's files").isTrue();

        JobClient job = start(base, 1, sp);
        Map<String, Answer> after = ask(base, job, "after");
        List<DeadLetter> letters = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> dlq = KAFKA.readCommitted(base.get(KafkaOptions.DEAD_LETTER_TOPIC))) {
            for (ConsumerRecord<byte[], byte[]> r :
                    KafkaBroker.pollUntil(dlq, recs -> !recs.isEmpty(), Duration.ofSeconds(60))) {
                letters.add(DeadLetter.getDecoder().decode(r.value()));
            }
        }
        assertThat(letters).as("dead letters").hasSize(1);
        DeadLetter d = letters.get(0);
        assertThat(d.getErrorClass()).isEqualTo(ErrorClass.CORRUPT_MEMORY);
        String victim = d.getSessionId();
        assertThat(d.getReason())
                .contains("session " + victim + ": block 1 quarantined")
                .contains("index checksum")
                .contains("stored ")
                .doesNotContain("stored none");
        for (String s : SESSIONS) {
            if (s.equals(victim)) {
                assertThat(after.get(s).getMemory().getFingerprint())
                        .as("the damaged block is not served")
                        .isNotEqualTo(baseline.get(s).getMemory().getFingerprint());
            } else {
                assertThat(after.get(s).getText())
                        .as("answer of %s", s)
                        .isEqualTo(baseline.get(s).getText());
                assertThat(after.get(s).getMemory())
                        .as("memory of %s", s)
                        .isEqualTo(baseline.get(s).getMemory());
            }
        }
        Path sp2 = stopWithSavepoint(job, KAFKA.newDir("savepoints-after"));
        StoredSession healed = StoredSession.byId(SavepointMemoryReader.read(sp2, EngramJob.SESSION_MEMORY_UID))
                .get(victim);
        assertThat(healed.index().getBlockIds())
                .as("the quarantined block is gone from the index")
                .doesNotContain(1L);
        assertThat(healed.index().getDroppedUnits()).isEqualTo(1);
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    /** The newest {@code chk-N} with a {@code _metadata} file under {@code dir}, or null. */
    static Path latestCheckpoint(Path dir) {
        try (var list = Files.list(dir)) {
            return list.filter(p -> p.getFileName().toString().startsWith("chk-")
                            && Files.isRegularFile(p.resolve("_metadata")))
                    .max(java.util.Comparator.comparingInt(
                            p -> Integer.parseInt(p.getFileName().toString().substring(4))))
                    .orElse(null);
        } catch (java.io.IOException e) {
            return null; // not created yet
        }
    }

    /** {@code engram state inspect --snapshot DIR} as JSON and as text agrees with what the reader found. */
    static void inspectWithCli(Path snapshot, Map<String, StoredSession> expected) throws Exception {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CliContext ctx = new CliContext(
                new PrintWriter(out, true),
                new PrintWriter(err, true),
                Map.of(),
                InputStream.nullInputStream(),
                false,
                SessionStageFactory.none(),
                new CompletableFuture<>());
        assertThat(new EngramCli(ctx)
                        .execute("state", "inspect", "--snapshot", snapshot.toString(), "--format", "json"))
                .as("exit code; stderr: %s", err)
                .isZero();
        JsonNode sessions = new ObjectMapper().readTree(out.toString());
        assertThat(sessions).hasSize(expected.size());
        for (JsonNode s : sessions) {
            StoredSession want = expected.get(s.path("session").asText());
            assertThat(want).as("session %s", s.path("session")).isNotNull();
            assertThat(s.path("healthy").asBoolean()).isTrue();
            assertThat(s.path("bytes").asLong()).isEqualTo(want.unitBytes());
            assertThat(s.path("index").path("next_seq").asLong())
                    .isEqualTo(want.index().getNextSeq());
            assertThat(s.path("units")).hasSize(want.units().size());
            for (JsonNode u : s.path("units")) {
                assertThat(u.path("checksum").asText()).isEqualTo("OK");
                assertThat(u.path("dtype").asText()).isEqualTo("BF16");
                assertThat(u.path("bytes").asInt())
                        .isEqualTo(want.units().get(u.path("unit_id").asLong()).length);
            }
        }
        assertThat(err.toString())
                .contains(expected.size() + " session(s)")
                .contains("0 session(s) with units that fail");
        // the memory policy's episodes: ranges within the stream, in order, not overlapping
        int withEpisodes = 0;
        for (JsonNode s : sessions) {
            JsonNode policy = s.path("policy");
            assertThat(policy.path("policy").asText())
                    .as("policy state of %s", s.path("session"))
                    .isEqualTo("emllm");
            long prevEnd = 0;
            for (JsonNode u : policy.path("units")) {
                assertThat(u.path("kind").asText()).isEqualTo("EPISODE");
                assertThat(u.path("start_seq").asLong())
                        .isGreaterThanOrEqualTo(prevEnd)
                        .isLessThan(u.path("end_seq").asLong());
                assertThat(u.path("end_seq").asLong())
                        .isLessThanOrEqualTo(s.path("index").path("next_seq").asLong());
                prevEnd = u.path("end_seq").asLong();
            }
            assertThat(policy.path("units")).hasSize(policy.path("unit_count").asInt());
            withEpisodes += policy.path("units").isEmpty() ? 0 : 1;
        }
        assertThat(withEpisodes)
                .as("sessions whose stream outgrew the window have episodes")
                .isPositive();

        StringWriter text = new StringWriter();
        ctx = new CliContext(
                new PrintWriter(text, true),
                new PrintWriter(new StringWriter(), true),
                Map.of(),
                InputStream.nullInputStream(),
                false,
                SessionStageFactory.none(),
                new CompletableFuture<>());
        assertThat(new EngramCli(ctx).execute("state", "inspect", "--snapshot", snapshot.toString(), "-s", "ada"))
                .isZero();
        StoredSession ada = expected.get("ada");
        assertThat(text.toString())
                .startsWith("session ada: " + ada.units().size() + " units")
                .contains("next_seq " + ada.index().getNextSeq())
                .doesNotContain("session bo");
        assertThat(text.toString().lines().filter(l -> l.endsWith(" ok")).count())
                .isEqualTo(ada.units().size());
    }

    /** The index lists exactly the stored units, with their checksums, and every unit passes its own CRC. */
    static void checkConsistent(StoredSession s) {
        SessionIndex idx = s.index();
        assertThat(idx).as("index of %s", s.session()).isNotNull();
        assertThat(idx.getEventCount()).as("events of %s", s.session()).isEqualTo(3);
        assertThat(s.units().keySet()).as("units of %s", s.session()).containsExactlyElementsOf(idx.getBlockIds());
        long tokens = 0;
        for (int i = 0; i < idx.getBlockIds().size(); i++) {
            byte[] bytes = s.units().get(idx.getBlockIds().get(i));
            KvBlockCodec.Header h = KvBlockCodec.header(bytes, s.session());
            assertThat(h.checksumOk())
                    .as("CRC of unit %d of %s", h.blockId(), s.session())
                    .isTrue();
            assertThat(h.checksum()).isEqualTo(idx.getBlockCrcs().get(i));
            tokens += h.length();
        }
        assertThat(tokens)
                .as("tokens of %s", s.session())
                .isEqualTo(idx.getNextSeq())
                .isPositive();
    }

    /** The memory fingerprint answers carry: CRC32C over the index's block checksums, in order. */
    static String fingerprint(SessionIndex idx) {
        CRC32C crc = new CRC32C();
        for (int c : idx.getBlockCrcs()) {
            crc.update(ByteBuffer.allocate(4).putInt(c).array());
        }
        return "%08x".formatted(crc.getValue());
    }

    static JobClient start(ResolvedOptions base, int parallelism, Path savepoint) throws Exception {
        ResolvedOptions options = base.with(Map.of("engram.job.parallelism", Integer.toString(parallelism)));
        Configuration conf = EngramJob.flinkConfiguration(options);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        if (savepoint != null) {
            conf.set(StateRecoveryOptions.SAVEPOINT_PATH, savepoint.toUri().toString());
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);
        EngramJob.build(
                env,
                EngramSources.kafka(options),
                EngramSinks.kafka(options),
                options,
                EngineSessionStage.from(options));
        return env.executeAsync("savepoint-restore-it-p" + parallelism);
    }

    static Path stopWithSavepoint(JobClient job, Path dir) throws Exception {
        String location = job.stopWithSavepoint(false, dir.toUri().toString(), SavepointFormatType.CANONICAL)
                .get(120, TimeUnit.SECONDS);
        job.getJobExecutionResult().get(60, TimeUnit.SECONDS);
        return location.startsWith("file:") ? Path.of(URI.create(location)) : Path.of(location);
    }

    /** Asks every session the same question (query ids {@code <session>-<round>}) and waits for all answers. */
    static Map<String, Answer> ask(ResolvedOptions options, JobClient job, String round) throws Exception {
        return ask(KAFKA, options, job, round);
    }

    /** {@link #ask(ResolvedOptions, JobClient, String)} through {@code kafka}. */
    static Map<String, Answer> ask(KafkaBroker kafka, ResolvedOptions options, JobClient job, String round)
            throws Exception {
        List<EngramEvent> queries = new ArrayList<>();
        for (String s : SESSIONS) {
            queries.add(event(
                    s,
                    s + "-" + round,
                    new QueryEvent(
                            s + "-" + round,
                            QUESTION,
                            GenerationOptions.newBuilder()
                                    .setMaxNewTokens(6)
                                    .setTemperature(0f)
                                    .setStop(List.of())
                                    .build())));
        }
        kafka.produceEvents(options, queries);
        Map<String, Answer> bySession = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> c = kafka.readCommitted(options.get(KafkaOptions.ANSWERS_TOPIC))) {
            List<ConsumerRecord<byte[], byte[]>> recs = KafkaBroker.pollUntil(
                    c,
                    r -> r.stream()
                                            .filter(x -> decode(x.value())
                                                    .getQueryId()
                                                    .endsWith("-" + round))
                                            .count()
                                    >= SESSIONS.length
                            || job.getJobExecutionResult().isDone(),
                    Duration.ofSeconds(120));
            for (ConsumerRecord<byte[], byte[]> r : recs) {
                Answer a = decode(r.value());
                if (a.getQueryId().endsWith("-" + round)) {
                    assertThat(bySession.put(a.getSessionId(), a))
                            .as("one answer to %s", a.getQueryId())
                            .isNull();
                }
            }
        }
        if (job.getJobExecutionResult().isDone()) {
            job.getJobExecutionResult().get(1, TimeUnit.SECONDS); // rethrows the job's failure
        }
        assertThat(bySession.keySet())
                .as("sessions answered in round %s", round)
                .containsExactlyInAnyOrder(SESSIONS);
        assertThat(job.getJobStatus().get(10, TimeUnit.SECONDS)).isEqualTo(JobStatus.RUNNING);
        return bySession;
    }

    static Answer decode(byte[] b) {
        try {
            return Answer.getDecoder().decode(b);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
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
}
