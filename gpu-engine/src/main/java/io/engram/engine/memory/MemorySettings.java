package io.engram.engine.memory;

import io.engram.engine.memory.duo.DuoAttention;
import io.engram.engine.memory.duo.HeadPattern;
import io.engram.engine.memory.retrieval.RetrievalMemory;
import io.engram.engine.memory.retrieval.RetrievalSettings;
import io.engram.engine.memory.sirllm.SirLlm;
import io.engram.engine.memory.streaming.StreamingLlm;
import io.engram.engine.config.ModelConfig;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Which memory policy a job runs and its sizes, chosen by configuration; {@link #create} builds it for a model.
 * The default is EM-LLM, which keeps a session's engine memory bounded however long its stream; its window and budget
 * are {@link #AUTO} by default and sized for the model by {@link #sizedFor}: the papers' values (128 init + 4096 local
 * + 2048 memory tokens) where the model's trained context holds them, else shares of that context. {@link Kind#FULL}
 * keeps every token (exact, unbounded).
 *
 * @param duoPattern DuoAttention head-score file; null or blank looks for {@value HeadPattern#FILE_NAME} in the model folder
 */
public record MemorySettings(Kind policy, int initTokens, int localTokens, int topUnits, int memoryTokens, double contiguity,
        int cachedBlocks, int reprTokens, double surpriseGamma, int eventMinTokens, int eventMaxTokens, int sinkTokens,
        int recentTokens, int scoredTokens, double decay, boolean duo, double duoSparsity, String duoPattern,
        int duoSinkTokens, int duoRecentTokens, RetrievalSettings.Refinement refinement, int refineFromLayer)
        implements Serializable {

    /** The policies. */
    public enum Kind {
        /** Every token, at its position: exact, memory grows with the stream. */
        FULL,
        /** StreamingLLM: sinks + recent window. */
        STREAMING,
        /** InfLLM: init + local window + top-k retrieved blocks. */
        INFLLM,
        /** EM-LLM: init + local window + surprise-segmented events by token budget (+ contiguity). */
        EMLLM,
        /** SirLLM: sinks + highest-entropy tokens + recent, decayed per turn. */
        SIRLLM
    }

    public MemorySettings {
        if (policy == null) {
            throw new IllegalArgumentException("a memory policy is required");
        }
        if (refinement == null) {
            refinement = RetrievalSettings.Refinement.NONE;
        }
        if (duoSparsity < 0 || duoSparsity > 1) {
            throw new IllegalArgumentException("DuoAttention sparsity must be in [0, 1], got " + duoSparsity);
        }
    }

    /** A size chosen for the model by {@link #sizedFor} (init, local, memory tokens and InfLLM's unit count). */
    public static final int AUTO = -1;
    /** The papers' window and budget: 128 init + 4096 local + 2048 memory tokens (16 units of 128). */
    static final int PAPER_INIT = 128;
    static final int PAPER_LOCAL = 4096;
    static final int PAPER_MEMORY = 2048;
    /** Tokens per InfLLM unit that {@link #AUTO} unit counts assume (the default block size). */
    static final int UNIT_TOKENS = 128;

    /** {@code recentTokens} default: per policy (StreamingLLM: the model's window less the sinks; SirLLM: 1000). */
    public static final int AUTO_RECENT = -1;
    /** SirLLM's recent tokens by default (the reference code's argparse default). */
    static final int SIRLLM_RECENT = 1000;

    /**
     * StreamingLLM's recent window: as configured, or by default a cache the size of the model's trained window (the
     * papers evaluate sinks + recent = the context they pre-trained with, e.g. 4 + 1020 for 1024).
     */
    int streamingRecent(ModelConfig model) {
        return recentTokens >= 0 ? recentTokens : Math.max(1, model.maxPositions() - sinkTokens);
    }

    public static MemorySettings defaults() {
        RetrievalSettings inf = RetrievalSettings.infLlm();
        RetrievalSettings em = RetrievalSettings.emLlm();
        RetrievalSettings.Surprise sp = (RetrievalSettings.Surprise) em.segmentation();
        return new MemorySettings(Kind.EMLLM, AUTO, AUTO, AUTO, AUTO, em.contiguity(),
                inf.cachedBlocks(), inf.reprTokens(), sp.gamma(), sp.minTokens(), sp.maxTokens(), StreamingLlm.DEFAULT_SINK_TOKENS,
                AUTO_RECENT, 1000, 1.0, false, 0.5, null, DuoAttention.DEFAULT_SINK_TOKENS, DuoAttention.DEFAULT_RECENT_TOKENS,
                sp.refinement(), sp.refineFromLayer());
    }

    /**
     * These settings with every {@link #AUTO} size chosen for {@code model}: where its trained context holds the
     * papers' 128 init + 4096 local + 2048 memory tokens (every attended position within it), those; else 1/16 of the
     * context for init tokens (at most 128), a quarter for retrieved memory and the rest for the local window, so init +
     * memory + local span exactly what the model was trained on. (engram-tiny, 1,024 tokens: 64 + 256 + 704; with a
     * window of 512 instead, 1,024-token held-out QA lost 0.4 of the six-skill sum against full attention, with 704
     * 0.2: docs/bench/memory.md.) InfLLM's unit count is the memory budget in units of {@value #UNIT_TOKENS} tokens.
     */
    public MemorySettings sizedFor(ModelConfig model) {
        int window = model.maxPositions();
        boolean paper = window >= PAPER_INIT + PAPER_LOCAL + PAPER_MEMORY;
        int init = initTokens != AUTO ? initTokens : paper ? PAPER_INIT : Math.max(1, Math.min(PAPER_INIT, window / 16));
        int memory = memoryTokens != AUTO ? memoryTokens : paper ? PAPER_MEMORY : Math.max(1, window / 4);
        int local = localTokens != AUTO ? localTokens : paper ? PAPER_LOCAL : Math.max(1, window - init - memory);
        int units = topUnits != AUTO ? topUnits : Math.max(1, memory / UNIT_TOKENS);
        return new MemorySettings(policy, init, local, units, memory, contiguity, cachedBlocks, reprTokens,
                surpriseGamma, eventMinTokens, eventMaxTokens, sinkTokens, recentTokens, scoredTokens, decay, duo, duoSparsity,
                duoPattern, duoSinkTokens, duoRecentTokens, refinement, refineFromLayer);
    }

    public MemorySettings withPolicy(Kind k) {
        return new MemorySettings(k, initTokens, localTokens, topUnits, memoryTokens, contiguity, cachedBlocks, reprTokens,
                surpriseGamma, eventMinTokens, eventMaxTokens, sinkTokens, recentTokens, scoredTokens, decay, duo, duoSparsity,
                duoPattern, duoSinkTokens, duoRecentTokens, refinement, refineFromLayer);
    }

    public MemorySettings withWindow(int init, int local) {
        return new MemorySettings(policy, init, local, topUnits, memoryTokens, contiguity, cachedBlocks, reprTokens,
                surpriseGamma, eventMinTokens, eventMaxTokens, sinkTokens, recentTokens, scoredTokens, decay, duo, duoSparsity,
                duoPattern, duoSinkTokens, duoRecentTokens, refinement, refineFromLayer);
    }

    public MemorySettings withRetrieval(int units, int memTokens, int cached) {
        return new MemorySettings(policy, initTokens, localTokens, units, memTokens, contiguity, cached, reprTokens,
                surpriseGamma, eventMinTokens, eventMaxTokens, sinkTokens, recentTokens, scoredTokens, decay, duo, duoSparsity,
                duoPattern, duoSinkTokens, duoRecentTokens, refinement, refineFromLayer);
    }

    public MemorySettings withStreaming(int sinks, int recent, int scored) {
        return new MemorySettings(policy, initTokens, localTokens, topUnits, memoryTokens, contiguity, cachedBlocks, reprTokens,
                surpriseGamma, eventMinTokens, eventMaxTokens, sinks, recent, scored, decay, duo, duoSparsity, duoPattern,
                duoSinkTokens, duoRecentTokens, refinement, refineFromLayer);
    }

    public MemorySettings withDuo(boolean on, double sparsity, String pattern, int sinks, int recent) {
        return new MemorySettings(policy, initTokens, localTokens, topUnits, memoryTokens, contiguity, cachedBlocks, reprTokens,
                surpriseGamma, eventMinTokens, eventMaxTokens, sinkTokens, recentTokens, scoredTokens, decay, on, sparsity, pattern,
                sinks, recent, refinement, refineFromLayer);
    }

    /** The EM-LLM/InfLLM settings these values describe for {@code model} ({@link #AUTO} sizes chosen for it). */
    public RetrievalSettings retrieval(ModelConfig model) {
        if (autoSized()) {
            return sizedFor(model).retrieval(model);
        }
        return switch (policy) {
            case EMLLM -> new RetrievalSettings(initTokens, localTokens, reprTokens, 0, memoryTokens, contiguity, cachedBlocks,
                    new RetrievalSettings.Surprise(surpriseGamma, eventMinTokens, eventMaxTokens, refinement, refineFromLayer));
            default -> new RetrievalSettings(initTokens, localTokens, reprTokens, topUnits, 0, 0, cachedBlocks,
                    new RetrievalSettings.Uniform());
        };
    }

    /**
     * The policy for {@code model}; with DuoAttention on, the chosen policy serves the retrieval heads and the head
     * pattern comes from {@code duoPattern} or the model folder.
     *
     * @throws IllegalArgumentException when DuoAttention is on and no head pattern can be read
     */
    public MemoryPolicy create(ModelConfig model, Path modelDir) {
        MemoryPolicy base = switch (policy) {
            case FULL -> new FullAttention();
            case STREAMING -> new StreamingLlm(sinkTokens, streamingRecent(model));
            case INFLLM, EMLLM -> RetrievalMemory.of(retrieval(model), model);
            case SIRLLM -> new SirLlm(sinkTokens, recentTokens < 0 ? SIRLLM_RECENT : recentTokens, scoredTokens, decay);
        };
        if (!duo) {
            return base;
        }
        Path file = duoPattern == null || duoPattern.isBlank()
                ? (modelDir == null ? null : (Files.isDirectory(modelDir) ? modelDir : modelDir.toAbsolutePath().getParent())
                        .resolve(HeadPattern.FILE_NAME))
                : Path.of(duoPattern);
        if (file == null || !Files.isRegularFile(file)) {
            throw new IllegalArgumentException("DuoAttention is on but there is no head pattern at " + file
                    + "; run 'engram calibrate-heads' for this model or set the pattern file");
        }
        float[][] scores = HeadPattern.read(file, model.layers(), model.kvHeads());
        return new DuoAttention(HeadPattern.bySparsity(scores, duoSparsity), base, duoSinkTokens, duoRecentTokens);
    }

    /** {@link #describe()} with the sizes chosen for {@code model} in place of {@link #AUTO}. */
    public String describe(ModelConfig model) {
        MemorySettings sized = autoSized() && (policy == Kind.INFLLM || policy == Kind.EMLLM) ? sizedFor(model) : this;
        return sized.describe(RetrievalSettings.refineFrom(refineFromLayer, model.layers()));
    }

    /** One line for logs. */
    public String describe() {
        return describe(refineFromLayer);
    }

    private boolean autoSized() {
        return initTokens == AUTO || localTokens == AUTO || topUnits == AUTO || memoryTokens == AUTO;
    }

    private String describe(int refineLayer) {
        String p = switch (policy) {
            case FULL -> "full attention";
            case STREAMING -> "StreamingLLM %d sinks + %s recent".formatted(sinkTokens,
                    recentTokens < 0 ? "the model's window less the sinks" : String.valueOf(recentTokens));
            case INFLLM -> "InfLLM %s init + %s local + top-%s units, %d cached blocks/layer".formatted(size(initTokens),
                    size(localTokens), size(topUnits), cachedBlocks);
            case EMLLM -> "EM-LLM %s init + %s local + %s memory tokens (contiguity %.2f), events %d..%d at gamma %.2f%s".formatted(
                    size(initTokens), size(localTokens), size(memoryTokens), contiguity, eventMinTokens, eventMaxTokens, surpriseGamma,
                    refinement == RetrievalSettings.Refinement.NONE ? "" : ", " + refinement.name().toLowerCase(java.util.Locale.ROOT)
                            + " refinement from layer " + refineLayer);
            case SIRLLM -> "SirLLM %d sinks + %d scored + %d recent, decay %.2f".formatted(sinkTokens, scoredTokens,
                    recentTokens < 0 ? SIRLLM_RECENT : recentTokens, decay);
        };
        return duo ? p + " on retrieval heads; DuoAttention streaming heads %d sinks + %d recent, sparsity %.2f"
                .formatted(duoSinkTokens, duoRecentTokens, duoSparsity) : p;
    }

    private static String size(int n) {
        return n == AUTO ? "auto" : String.valueOf(n);
    }
}
