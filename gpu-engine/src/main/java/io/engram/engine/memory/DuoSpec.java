package io.engram.engine.memory;

import io.engram.engine.config.ModelConfig;
import io.engram.engine.memory.duo.DuoAttention;
import io.engram.engine.memory.duo.HeadPattern;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * DuoAttention: the retrieval heads attend as {@code retrieval} does, the streaming heads (the {@code sparsity}
 * share of KV heads with the lowest scores in the head pattern at {@code pattern}, or {@value HeadPattern#FILE_NAME}
 * in the model folder when blank) only {@code sinkTokens} + {@code recentTokens}.
 */
public record DuoSpec(MemorySpec retrieval, double sparsity, String pattern, int sinkTokens, int recentTokens)
        implements MemorySpec {
    /** The share of streaming heads by default, also the fast attribution tier's when DuoAttention is off. */
    public static final double DEFAULT_SPARSITY = 0.5;

    public DuoSpec {
        if (retrieval == null || retrieval instanceof DuoSpec) {
            throw new IllegalArgumentException("DuoAttention wraps one policy other than itself, got " + retrieval);
        }
        if (!(sparsity >= 0 && sparsity <= 1) || sinkTokens < 0 || recentTokens < 0) {
            throw new IllegalArgumentException(
                    "DuoAttention sparsity must be in [0, 1] and its sinks and recent tokens "
                            + ">= 0, got %s, %d, %d".formatted(sparsity, sinkTokens, recentTokens));
        }
    }

    /** DuoAttention over {@code retrieval} with the default sparsity, pattern location and streaming window. */
    public static DuoSpec over(MemorySpec retrieval) {
        return new DuoSpec(
                retrieval, DEFAULT_SPARSITY, "", DuoAttention.DEFAULT_SINK_TOKENS, DuoAttention.DEFAULT_RECENT_TOKENS);
    }

    @Override
    public Kind kind() {
        return retrieval.kind();
    }

    @Override
    public MemoryPolicy create(ModelConfig model, Path modelDir) {
        MemoryPolicy base = retrieval.create(model, modelDir);
        Path file = pattern == null || pattern.isBlank()
                ? (modelDir == null ? null : HeadPattern.besideModel(modelDir))
                : Path.of(pattern);
        if (file == null || !Files.isRegularFile(file)) {
            throw new IllegalArgumentException("DuoAttention is on but there is no head pattern at " + file
                    + "; run 'engram calibrate-heads' for this model or set the pattern file");
        }
        float[][] scores = HeadPattern.read(file, model.layers(), model.kvHeads());
        return new DuoAttention(HeadPattern.bySparsity(scores, sparsity), base, sinkTokens, recentTokens);
    }

    @Override
    public String describe(ModelConfig model) {
        return retrieval.describe(model)
                + " on retrieval heads; DuoAttention streaming heads %d sinks + %d recent, sparsity %.2f"
                        .formatted(sinkTokens, recentTokens, sparsity);
    }
}
