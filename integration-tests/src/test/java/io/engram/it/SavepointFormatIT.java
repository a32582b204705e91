package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.schemas.Answer;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.state.flink.SavepointMemoryReader;
import io.engram.state.store.StoredSession;
import io.engram.topology.EngramJob;
import io.engram.topology.options.ResolvedOptions;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.flink.core.execution.JobClient;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The savepoint format stays readable: a canonical savepoint written by an earlier build of Engram (checked in under
 * {@code src/test/resources/savepoint-format/}, with the options it ran with and each session's memory as its answers
 * reported it) restores with this build. Read with the State Processor API, every session is there and consistent; the
 * restored job answers each session over memory equal to what it held when the savepoint was taken (tokens, bytes,
 * units, fingerprint of the stored blocks). A change to the state layout (descriptors, serializers, the block codec,
 * the policy-state schema, operator uids) that cannot read the fixture fails here.
 *
 * <p>The fixture is written with {@code -Dengram.savepoint-fixture.write=DIR} (the method {@link #writeFixture}); its
 * topics, consumer group and transactional ids are fixed names, so the restore recreates the topics on a fresh broker
 * and fills each partition past the offsets the savepoint resumes from with content of other sessions.
 */
class SavepointFormatIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    static final Path FIXTURE = Path.of("src/test/resources/savepoint-format/v1");
    static final String[] TOPICS = {
        "fixture-in", "fixture-answers", "fixture-summaries", "fixture-attributions", "fixture-dlq"
    };
    static final int PARTITIONS = 2;
    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        EngramSchemas.trustEngramClasses();
        // sessions remember the model they were built with by its folder's name: the fixture's has a fixed one
        model = TinyModels.write(
                KAFKA.newDir("model").resolve("savepoint-fixture-model"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
    }

    /** SavepointRestoreIT's options (EM-LLM with a small window) with the fixture's fixed topic and group names. */
    static ResolvedOptions options() throws Exception {
        ResolvedOptions base = SavepointRestoreIT.jobOptions(KAFKA, model);
        return base.with(Map.of(
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
                        "24"))
                .with(Map.of(
                        "engram.kafka.topic.input",
                        TOPICS[0],
                        "engram.kafka.topic.answers",
                        TOPICS[1],
                        "engram.kafka.topic.summaries",
                        TOPICS[2],
                        "engram.kafka.topic.attributions",
                        TOPICS[3],
                        "engram.kafka.topic.dead-letters",
                        TOPICS[4]))
                .with(Map.of(
                        "engram.kafka.group-id",
                        "fixture",
                        "engram.kafka.transactional-id-prefix",
                        "fixture",
                        "engram.queries.application-id",
                        "fixture"));
    }

    @Test
    void aSavepointWrittenByAnEarlierBuildRestoresWithItsMemory() throws Exception {
        assumeTrue(
                Files.isRegularFile(FIXTURE.resolve("fixture.json")),
                "no savepoint fixture at " + FIXTURE.toAbsolutePath());
        JsonNode fixture =
                new ObjectMapper().readTree(FIXTURE.resolve("fixture.json").toFile());
        Path savepoint = FIXTURE.resolve("savepoint");
        Map<String, StoredSession> stored =
                StoredSession.byId(SavepointMemoryReader.read(savepoint, EngramJob.SESSION_MEMORY_UID));
        assertThat(stored.keySet())
                .as(
                        "sessions in the fixture (written at %s)",
                        fixture.get("written").asText())
                .contains(SavepointRestoreIT.SESSIONS);
        stored.values().forEach(SavepointRestoreIT::checkConsistent);

        ResolvedOptions options = options();
        createTopicsFilled(options, 40); // past the savepoint's offsets (the fixture's 15 events and 5 questions)
        JobClient job = SavepointRestoreIT.start(options, PARTITIONS, savepoint);
        try {
            Map<String, Answer> answers = SavepointRestoreIT.ask(KAFKA, options, job, "restored");
            for (String s : SavepointRestoreIT.SESSIONS) {
                assertThat(answers.get(s).getMemory().toString())
                        .as("memory of %s restored from the fixture", s)
                        .isEqualTo(fixture.get("memory").get(s).asText());
                assertThat(answers.get(s).getMemory().getFingerprint())
                        .as("fingerprint of %s: the stored blocks", s)
                        .isEqualTo(SavepointRestoreIT.fingerprint(stored.get(s).index()));
            }
        } finally {
            job.cancel().get(60, TimeUnit.SECONDS);
        }
    }

    /** Writes the fixture: sessions with content on the fixed topics, their answers, a canonical savepoint. */
    @Test
    @EnabledIfSystemProperty(named = "engram.savepoint-fixture.write", matches = ".+")
    void writeFixture() throws Exception {
        Path out = Path.of(System.getProperty("engram.savepoint-fixture.write"));
        ResolvedOptions options = options();
        createTopicsFilled(options, 0);
        JobClient job = SavepointRestoreIT.start(options, PARTITIONS, null);
        List<EngramEvent> content = new ArrayList<>();
        for (int round = 0; round < 3; round++) {
            for (int s = 0; s < SavepointRestoreIT.SESSIONS.length; s++) {
                String id = SavepointRestoreIT.SESSIONS[s];
                content.add(SavepointRestoreIT.event(
                        id,
                        id + "-c" + round,
                        ContentEvent.newBuilder()
                                .setKind(ContentKind.DOCUMENT_CHUNK)
                                .setText("Page " + round + " of " + id + ": the vault code is "
                                        + (3100 + 97 * s + round) + ", and the lighthouse keeper counted "
                                        + (40 + 7 * s + round)
                                        + " gulls at dawn.")
                                .build()));
            }
        }
        KAFKA.produceEvents(options, content);
        Map<String, Answer> answers = SavepointRestoreIT.ask(KAFKA, options, job, "written");
        Path savepoint = SavepointRestoreIT.stopWithSavepoint(job, KAFKA.newDir("savepoints"));
        if (Files.exists(out)) {
            try (Stream<Path> old = Files.walk(out)) {
                old.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        copy(savepoint, out.resolve("savepoint"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode f = json.createObjectNode();
        f.put("written", java.time.Instant.now().toString());
        f.put(
                "note",
                "SavepointFormatIT's fixture: a canonical savepoint of the options in SavepointFormatIT.options()");
        ObjectNode memory = f.putObject("memory");
        for (String s : SavepointRestoreIT.SESSIONS) {
            memory.put(s, answers.get(s).getMemory().toString());
        }
        json.writerWithDefaultPrettyPrinter()
                .writeValue(out.resolve("fixture.json").toFile(), f);
    }

    /**
     * The fixture's topics on this broker, each input partition holding {@code perPartition} records (content of
     * sessions the fixture does not ask about): on restore more than the savepoint's offsets, so that the source resumes
     * where the savepoint says.
     */
    static void createTopicsFilled(ResolvedOptions options, int perPartition) throws Exception {
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, KAFKA.bootstrapServers()))) {
            List<NewTopic> topics = Stream.of(TOPICS)
                    .map(t -> new NewTopic(t, PARTITIONS, (short) 1))
                    .toList();
            admin.createTopics(topics).all().get(30, TimeUnit.SECONDS);
        }
        try (KafkaProducer<byte[], byte[]> p = KAFKA.producer()) {
            for (int partition = 0; partition < PARTITIONS; partition++) {
                for (int i = 0; i < perPartition; i++) {
                    String session = "filler-" + partition;
                    EngramEvent e = SavepointRestoreIT.event(
                            session,
                            session + "-" + i,
                            ContentEvent.newBuilder()
                                    .setKind(ContentKind.DOCUMENT_CHUNK)
                                    .setText("Filler line " + i + ".")
                                    .build());
                    byte[] v = AnswerWorkload.bytes(e);
                    p.send(new ProducerRecord<>(TOPICS[0], partition, session.getBytes(StandardCharsets.UTF_8), v))
                            .get(10, TimeUnit.SECONDS);
                }
            }
        }
    }

    private static void copy(Path from, Path to) throws Exception {
        try (Stream<Path> files = Files.walk(from)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                Path target = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) {
                    Files.createDirectories(target);
                } else {
                    Files.copy(p, target);
                }
            }
        }
    }
}
