package io.engram.topology;

import io.engram.operators.session.SessionMemoryOperator;
import io.engram.operators.session.SessionSettings;
import io.engram.schemas.Answer;
import io.engram.schemas.EngramEvent;
import io.engram.topology.options.ResolvedOptions;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.streaming.api.datastream.KeyedStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;

/** The production session stage: {@link SessionMemoryOperator} over the keyed events, with the engine it needs. */
public final class EngineSessionStage implements SessionStage {
    private final SessionSettings settings;

    public EngineSessionStage(SessionSettings settings) {
        this.settings = settings;
    }

    /** Builds the stage from resolved options. @throws SessionStageFactory.StageUnavailableException without a model */
    public static EngineSessionStage from(ResolvedOptions o) {
        var dir = o.find(EngineOptions.MODEL_DIR).orElseThrow(() -> new SessionStageFactory.StageUnavailableException(
                "no model configured: set " + EngineOptions.MODEL_DIR.key() + " (flag, environment or config file) to a "
                        + "Hugging Face model folder"));
        if (!java.nio.file.Files.isRegularFile(dir.resolve("config.json"))) {
            throw new SessionStageFactory.StageUnavailableException(EngineOptions.MODEL_DIR.key() + "=" + dir
                    + " is not a model folder (no config.json)");
        }
        io.engram.engine.memory.MemorySettings memory = MemoryOptions.settings(o);
        try {
            // fail at submission, not on every task manager: e.g. DuoAttention without a head pattern for this model
            memory.create(io.engram.engine.model.ModelConfig.fromHuggingFace(dir.resolve("config.json")), dir);
        } catch (IllegalArgumentException e) {
            throw new io.engram.topology.options.ConfigException("memory policy: " + e.getMessage());
        }
        return new EngineSessionStage(new SessionSettings(dir.toAbsolutePath().toString(), o.get(EngineOptions.BLOCK_SIZE),
                o.get(EngineOptions.PREFILL_CHUNK), o.get(EngineOptions.THREADS), o.get(EngineOptions.MAX_NEW_TOKENS),
                o.get(EngineOptions.SUMMARY_TOKENS), o.get(EngineOptions.SUMMARY_INTERVAL), o.get(EngineOptions.MAX_BATCH),
                o.get(EngineOptions.BATCH_WINDOW).toMillis(), io.engram.state.codec.KvDType.valueOf(o.get(EngineOptions.KV_STORAGE)),
                o.get(EngineOptions.WORKING_SET_MB) * 1024L * 1024L, memory,
                new SessionSettings.Retention(o.get(EngineOptions.RETENTION), o.get(EngineOptions.MAX_SESSION_TOKENS),
                        o.get(EngineOptions.MAX_SESSION_MB) * 1024L * 1024L),
                new io.engram.engine.backend.Backends.DeviceSettings(o.get(EngineOptions.DEVICE),
                        o.get(EngineOptions.GPU_MEMORY_MB) * 1024L * 1024L)));
    }

    @Override
    public SessionOutputs apply(KeyedStream<EngramEvent, String> events) {
        SingleOutputStreamOperator<Answer> answers = events
                .transform("session memory", new AvroTypeInfo<>(Answer.class), new SessionMemoryOperator(settings))
                .uid("engram-session-memory")
                .name("session memory");
        return new SessionOutputs(answers, answers.getSideOutput(SessionMemoryOperator.SUMMARIES),
                answers.getSideOutput(SessionMemoryOperator.ATTRIBUTIONS), answers.getSideOutput(SessionMemoryOperator.DEAD_LETTERS));
    }
}
