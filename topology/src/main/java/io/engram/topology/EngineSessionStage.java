package io.engram.topology;

import io.engram.operators.attribution.PreciseAttributionOperator;
import io.engram.operators.session.SessionMemoryOperator;
import io.engram.operators.session.SessionSettings;
import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionRequest;
import io.engram.schemas.EngramEvent;
import io.engram.topology.options.ResolvedOptions;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.KeyedStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;

/**
 * The production session stage: {@link SessionMemoryOperator} over the keyed events, with the engine it needs, and the
 * precise attribution operator after it when that tier is on.
 */
public final class EngineSessionStage implements SessionStage {
    /** The precise attribution operator: its keyed state holds the searches in progress. */
    public static final String PRECISE_ATTRIBUTION_UID = "engram-precise-attribution";

    private final SessionSettings settings;
    private final io.engram.operators.session.SessionFaults faults;

    public EngineSessionStage(SessionSettings settings) {
        this(settings, io.engram.operators.session.SessionFaults.NONE);
    }

    /** A stage whose session operator also raises the failures {@code faults} plans (tests and soaks). */
    public EngineSessionStage(SessionSettings settings, io.engram.operators.session.SessionFaults faults) {
        this.settings = settings;
        this.faults = faults;
    }

    /** The injected failures {@code engram.faults.*} ask for ({@link io.engram.operators.session.SessionFaults#NONE} by default). */
    static io.engram.operators.session.SessionFaults faults(ResolvedOptions o) {
        String points = o.get(EngineOptions.FAULT_POINTS);
        if (points.isBlank() || o.get(EngineOptions.FAULT_RATE) == 0) {
            return io.engram.operators.session.SessionFaults.NONE;
        }
        java.util.Set<io.engram.operators.session.SessionFaults.Point> set = new java.util.HashSet<>();
        for (String p : points.split(",")) {
            set.add(io.engram.operators.session.SessionFaults.Point.valueOf(
                    p.strip().toUpperCase(java.util.Locale.ROOT)));
        }
        return new io.engram.operators.session.SessionFaults(
                set, o.get(EngineOptions.FAULT_RATE), o.get(EngineOptions.FAULT_SEED), java.util.Set.of(), 0);
    }

    /**
     * Engram's own model, used when no model is configured: under the installation ({@code engram.home}, which the
     * {@code ./engram} launcher sets to the repository root), else relative to the working directory.
     */
    static java.nio.file.Path shippedModelDir() {
        return java.nio.file.Path.of(System.getProperty("engram.home", "."), "models", "engram-tiny");
    }

    private static java.util.Optional<java.nio.file.Path> shippedModel() {
        return java.nio.file.Files.isRegularFile(shippedModelDir().resolve("config.json"))
                ? java.util.Optional.of(shippedModelDir())
                : java.util.Optional.empty();
    }

    /** Builds the stage from resolved options. @throws SessionStageFactory.StageUnavailableException without a model */
    public static EngineSessionStage from(ResolvedOptions o) {
        var dir = o.find(EngineOptions.MODEL_DIR)
                .or(EngineSessionStage::shippedModel)
                .orElseThrow(() -> new SessionStageFactory.StageUnavailableException("no model configured: set "
                        + EngineOptions.MODEL_DIR.key()
                        + " (flag, environment or config file) to a Hugging Face model folder; Engram's own model ("
                        + shippedModelDir() + ") is not in this checkout: training/README.md says how it is trained"));
        if (!java.nio.file.Files.isRegularFile(dir.resolve("config.json"))) {
            throw new SessionStageFactory.StageUnavailableException(
                    EngineOptions.MODEL_DIR.key() + "=" + dir + " is not a model folder (no config.json)");
        }
        checkModelFolder(dir);
        io.engram.engine.memory.MemorySpec memory;
        try {
            memory = MemoryOptions.spec(o);
            // fail at submission, not on every task manager: e.g. DuoAttention without a head pattern for this model
            memory.create(io.engram.engine.config.ModelConfig.fromHuggingFace(dir.resolve("config.json")), dir);
        } catch (IllegalArgumentException e) {
            throw new io.engram.topology.options.ConfigException("memory policy: " + e.getMessage());
        }
        SessionSettings settings = SessionSettings.of(
                        dir.toAbsolutePath().toString(),
                        o.get(EngineOptions.BLOCK_SIZE),
                        o.get(EngineOptions.PREFILL_CHUNK),
                        o.get(EngineOptions.THREADS),
                        new SessionSettings.Answers(
                                o.get(EngineOptions.MAX_NEW_TOKENS),
                                o.get(EngineOptions.SUMMARY_TOKENS),
                                o.get(EngineOptions.SUMMARY_INTERVAL)),
                        new SessionSettings.Batching(
                                o.get(EngineOptions.MAX_BATCH),
                                o.get(EngineOptions.BATCH_WINDOW).toMillis()),
                        new SessionSettings.Storage(
                                o.get(EngineOptions.KV_STORAGE),
                                o.get(EngineOptions.WORKING_SET_MB) * 1024L * 1024L,
                                new SessionSettings.Retention(
                                        o.get(EngineOptions.RETENTION),
                                        o.get(EngineOptions.MAX_SESSION_TOKENS),
                                        o.get(EngineOptions.MAX_SESSION_MB) * 1024L * 1024L,
                                        o.get(EngineOptions.IDLE_TTL).toMillis())))
                .withMemory(memory)
                .withAttribution(AttributionOptions.settings(o))
                .withDevice(new io.engram.engine.backend.Backends.DeviceSettings(
                        o.get(EngineOptions.DEVICE), o.get(EngineOptions.GPU_MEMORY_MB) * 1024L * 1024L))
                .withLimits(new SessionSettings.Limits(
                        o.get(EngineOptions.MAX_EVENT_TOKENS), o.get(EngineOptions.MAX_PENDING_QUERIES)));
        return new EngineSessionStage(settings, faults(o));
    }

    /**
     * Opens the model folder's weights and tokenizer once at submission, so that a missing, truncated or mismatched
     * file is reported here (naming the file and what is wrong; the CLI exits 3) instead of failing every task manager.
     */
    static void checkModelFolder(java.nio.file.Path dir) {
        try (io.engram.engine.model.Model m = io.engram.engine.model.Model.openHuggingFace(dir)) {
            io.engram.engine.tokenizer.Tokenizers.fromHuggingFace(dir);
        } catch (io.engram.engine.config.ModelFormatException | io.engram.engine.tokenizer.TokenizerFormatException e) {
            throw new SessionStageFactory.StageUnavailableException("the model folder " + dir + " ("
                    + EngineOptions.MODEL_DIR.key() + ") cannot be used: " + e.getMessage());
        }
    }

    @Override
    public SessionOutputs apply(KeyedStream<EngramEvent, String> events) {
        SingleOutputStreamOperator<Answer> answers = events.transform(
                        "session memory", new AvroTypeInfo<>(Answer.class), new SessionMemoryOperator(settings, faults))
                .uid("engram-session-memory")
                .name("session memory");
        return new SessionOutputs(
                answers,
                answers.getSideOutput(SessionMemoryOperator.SUMMARIES),
                attributions(answers, settings),
                answers.getSideOutput(SessionMemoryOperator.DEAD_LETTERS));
    }

    /**
     * The FAST attribution records of the session operator, and the PRECISE ones of {@link PreciseAttributionOperator},
     * which searches on its own task thread, keyed by session like the requests the session operator sends it.
     */
    static DataStream<Attribution> attributions(SingleOutputStreamOperator<Answer> session, SessionSettings settings) {
        DataStream<Attribution> fast = session.getSideOutput(SessionMemoryOperator.ATTRIBUTIONS);
        if (!settings.attribution().tier().precise()) {
            return fast;
        }
        DataStream<Attribution> precise = session.getSideOutput(SessionMemoryOperator.ATTRIBUTION_REQUESTS)
                .keyBy(AttributionRequest::getSessionId, Types.STRING)
                .process(
                        new PreciseAttributionOperator(settings.engine(), settings.attribution()),
                        new AvroTypeInfo<>(Attribution.class))
                .uid(PRECISE_ATTRIBUTION_UID)
                .name("precise attribution");
        return fast.union(precise);
    }
}
