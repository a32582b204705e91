package io.engram.engine.memory;

import io.engram.engine.config.ModelConfig;
import io.engram.engine.memory.retrieval.RankingProjection;
import io.engram.engine.memory.retrieval.RetrievalSettings;
import io.engram.engine.memory.sirllm.SirLlm;
import io.engram.engine.memory.streaming.StreamingLlm;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Which memory policy a session attends with and its sizes: one record per policy, each checked when made and each
 * building its policy for a model ({@link #create}); {@link DuoSpec} wraps the spec its retrieval heads run. The default
 * ({@link #defaults}) is EM-LLM, which keeps a session's engine memory bounded however long its stream, with its window
 * and budget {@link #AUTO}: sized for the model by {@link Window#sizedFor}. {@link Full} keeps every token (exact,
 * unbounded). Specs travel with stream jobs (serializable).
 */
public sealed interface MemorySpec extends Serializable
        permits MemorySpec.Full, MemorySpec.Streaming, MemorySpec.InfLlm, MemorySpec.EmLlm, MemorySpec.SirLlm, DuoSpec {

    /** A size chosen for the model: {@link Window#sizedFor}, or per policy (StreamingLLM's and SirLLM's recent tokens). */
    int AUTO = -1;

    /** The policies. */
    enum Kind {
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

    /** The policy this spec runs (for {@link DuoSpec}, the one its retrieval heads run). */
    Kind kind();

    /**
     * The policy for {@code model}, whose files are at {@code modelDir} (DuoAttention's head pattern may sit there).
     *
     * @throws IllegalArgumentException when the spec cannot serve the model (e.g. no head pattern for DuoAttention)
     */
    MemoryPolicy create(ModelConfig model, Path modelDir);

    /** One line for logs, with the sizes chosen for {@code model} in place of {@link #AUTO} ("auto" when it is null). */
    String describe(ModelConfig model);

    /** The engine's default: EM-LLM's full method at sizes chosen for the model. */
    static MemorySpec defaults() {
        return EmLlm.paper();
    }

    /** {@code kind} with its papers' settings (sizes chosen for the model). */
    static MemorySpec defaults(Kind kind) {
        return switch (kind) {
            case FULL -> new Full();
            case STREAMING -> Streaming.defaults();
            case INFLLM -> InfLlm.paper();
            case EMLLM -> EmLlm.paper();
            case SIRLLM -> SirLlm.defaults();
        };
    }

    /** Every token at its position. */
    record Full() implements MemorySpec {
        @Override
        public Kind kind() {
            return Kind.FULL;
        }

        @Override
        public MemoryPolicy create(ModelConfig model, Path modelDir) {
            return new FullAttention();
        }

        @Override
        public String describe(ModelConfig model) {
            return "full attention";
        }
    }

    /**
     * StreamingLLM: {@code sinkTokens} + the {@code recentTokens} most recent; {@link #AUTO} recent tokens fill the
     * model's trained window (the papers evaluate sinks + recent = the pre-training context, e.g. 4 + 1020 for 1024).
     */
    record Streaming(int sinkTokens, int recentTokens) implements MemorySpec {
        public Streaming {
            if (sinkTokens < 0 || recentTokens < AUTO) {
                throw new IllegalArgumentException(
                        "StreamingLLM needs sinks >= 0 and recent tokens >= 0 (or auto), got %d and %d"
                                .formatted(sinkTokens, recentTokens));
            }
        }

        public static Streaming defaults() {
            return new Streaming(StreamingLlm.DEFAULT_SINK_TOKENS, AUTO);
        }

        int recent(ModelConfig model) {
            return recentTokens != AUTO ? recentTokens : Math.max(1, model.maxPositions() - sinkTokens);
        }

        @Override
        public Kind kind() {
            return Kind.STREAMING;
        }

        @Override
        public MemoryPolicy create(ModelConfig model, Path modelDir) {
            return new StreamingLlm(sinkTokens, recent(model));
        }

        @Override
        public String describe(ModelConfig model) {
            return "StreamingLLM %d sinks + %s recent"
                    .formatted(sinkTokens, size(model != null ? recent(model) : recentTokens));
        }
    }

    /**
     * The attended span of InfLLM and EM-LLM: {@code initTokens} at the stream's start, a local window of {@code
     * localTokens} and {@code memoryTokens} of retrieved memory per layer and step; any of them {@link #AUTO}.
     */
    record Window(int initTokens, int localTokens, int memoryTokens) implements Serializable {
        /** The papers' window and budget: 128 init + 4096 local + 2048 memory tokens. */
        public static final Window PAPER = new Window(128, 4096, 2048);

        public static final Window SIZED_FOR_MODEL = new Window(AUTO, AUTO, AUTO);

        public Window {
            if (initTokens < AUTO
                    || localTokens < AUTO
                    || localTokens == 0
                    || memoryTokens < AUTO
                    || memoryTokens == 0) {
                throw new IllegalArgumentException(
                        "window sizes: init >= 0, local and memory > 0 (or auto), got " + this);
            }
        }

        /**
         * This window with every {@link #AUTO} size chosen for {@code model}: where its trained context holds the papers'
         * 128 + 4096 + 2048 tokens (every attended position within it), those; else 1/16 of the context for init tokens
         * (at most 128), a quarter for memory and the rest for the local window, so that the three span exactly what
         * the model was trained on (engram-tiny, 1,024 tokens: 64 + 704 + 256; with a 512-token window instead,
         * 1,024-token held-out QA lost 0.4 of the six-skill sum against full attention, with 704 0.2:
         * docs/bench/memory.md).
         */
        public Window sizedFor(ModelConfig model) {
            int window = model.maxPositions();
            boolean paper = window >= PAPER.initTokens + PAPER.localTokens + PAPER.memoryTokens;
            int init = initTokens != AUTO
                    ? initTokens
                    : paper ? PAPER.initTokens : Math.max(1, Math.min(PAPER.initTokens, window / 16));
            int memory = memoryTokens != AUTO ? memoryTokens : paper ? PAPER.memoryTokens : Math.max(1, window / 4);
            int local =
                    localTokens != AUTO ? localTokens : paper ? PAPER.localTokens : Math.max(1, window - init - memory);
            return new Window(init, local, memory);
        }

        private Window resolved(ModelConfig model) {
            return model == null ? this : sizedFor(model);
        }
    }

    /**
     * InfLLM: uniform units of a storage block, the {@code topUnits} best per layer and step ({@link #AUTO}: the
     * window's memory tokens in units of {@value #UNIT_TOKENS}), {@code cachedBlocks} of them kept in engine memory
     * per layer, each represented by the keys of its {@code reprTokens} most attended tokens; units ranked through the
     * model's {@link RankingProjection} and the question's words as {@code ranking} says.
     */
    record InfLlm(Window window, int topUnits, int cachedBlocks, int reprTokens, RankingSpec ranking)
            implements MemorySpec {
        /** Tokens per unit that {@link #AUTO} unit counts assume (the default block size). */
        static final int UNIT_TOKENS = 128;

        public InfLlm {
            if (window == null
                    || topUnits < AUTO
                    || topUnits == 0
                    || cachedBlocks < 0
                    || reprTokens < 1
                    || ranking == null) {
                throw new IllegalArgumentException(
                        "InfLLM needs a window, top units > 0 (or auto), cached blocks >= 0 and "
                                + "representative tokens > 0: " + window + ", " + topUnits + ", " + cachedBlocks + ", "
                                + reprTokens);
            }
        }

        /** InfLLM's configuration (16 units of 128 at the papers' sizes, 4 representative tokens, 32 cached blocks). */
        public static InfLlm paper() {
            return new InfLlm(Window.SIZED_FOR_MODEL, AUTO, 32, 4, RankingSpec.DEFAULT);
        }

        public RetrievalSettings retrieval(ModelConfig model) {
            Window w = window.sizedFor(model);
            int units = topUnits != AUTO ? topUnits : Math.max(1, w.memoryTokens() / UNIT_TOKENS);
            return new RetrievalSettings(
                    w.initTokens(),
                    w.localTokens(),
                    reprTokens,
                    units,
                    0,
                    0,
                    cachedBlocks,
                    new RetrievalSettings.Uniform(),
                    ranking.lexicalUnits());
        }

        @Override
        public Kind kind() {
            return Kind.INFLLM;
        }

        @Override
        public MemoryPolicy create(ModelConfig model, Path modelDir) {
            return RankingProjection.policy(retrieval(model), model, modelDir, ranking.projection());
        }

        @Override
        public String describe(ModelConfig model) {
            Window w = window.resolved(model);
            int units = topUnits != AUTO || w.memoryTokens() == AUTO
                    ? topUnits
                    : Math.max(1, w.memoryTokens() / UNIT_TOKENS);
            return "InfLLM %s init + %s local + top-%s units, %d cached blocks/layer"
                            .formatted(size(w.initTokens()), size(w.localTokens()), size(units), cachedBlocks)
                    + ranking.describe();
        }
    }

    /**
     * EM-LLM: events cut where surprise exceeds mean + {@code gamma} std of the window before ({@code eventMinTokens}
     * to {@code eventMaxTokens} long), boundaries moved by {@code refinement} on the keys of the layers from {@code
     * refineFromLayer} (-1: the last 3/8), the window's memory tokens retrieved per layer and step with {@code
     * contiguity} of them given to the neighbours of retrieved events; events ranked through the model's {@link
     * RankingProjection} and the question's words as {@code ranking} says.
     */
    record EmLlm(
            Window window,
            double contiguity,
            int cachedBlocks,
            int reprTokens,
            double gamma,
            int eventMinTokens,
            int eventMaxTokens,
            RetrievalSettings.Refinement refinement,
            int refineFromLayer,
            RankingSpec ranking)
            implements MemorySpec {

        public EmLlm {
            if (window == null
                    || refinement == null
                    || ranking == null
                    || cachedBlocks < 0
                    || reprTokens < 1
                    || gamma < 0) {
                throw new IllegalArgumentException(
                        "EM-LLM needs a window, a refinement, cached blocks >= 0, representative "
                                + "tokens > 0 and gamma >= 0");
            }
            if (!(contiguity >= 0 && contiguity < 1)) {
                throw new IllegalArgumentException("contiguity share must be in [0, 1), got " + contiguity);
            }
            // event sizes and the refinement layer are checked by RetrievalSettings.Surprise
            new RetrievalSettings.Surprise(gamma, eventMinTokens, eventMaxTokens, refinement, refineFromLayer);
        }

        /** EM-LLM's full method: surprise, modularity refinement from the last 3/8 of the layers, 30% contiguity. */
        public static EmLlm paper() {
            RetrievalSettings em = RetrievalSettings.emLlm();
            RetrievalSettings.Surprise sp = (RetrievalSettings.Surprise) em.segmentation();
            return new EmLlm(
                    Window.SIZED_FOR_MODEL,
                    em.contiguity(),
                    em.cachedBlocks(),
                    em.reprTokens(),
                    sp.gamma(),
                    sp.minTokens(),
                    sp.maxTokens(),
                    sp.refinement(),
                    sp.refineFromLayer(),
                    RankingSpec.DEFAULT);
        }

        public RetrievalSettings retrieval(ModelConfig model) {
            Window w = window.sizedFor(model);
            return new RetrievalSettings(
                    w.initTokens(),
                    w.localTokens(),
                    reprTokens,
                    0,
                    w.memoryTokens(),
                    contiguity,
                    cachedBlocks,
                    new RetrievalSettings.Surprise(gamma, eventMinTokens, eventMaxTokens, refinement, refineFromLayer),
                    ranking.lexicalUnits());
        }

        @Override
        public Kind kind() {
            return Kind.EMLLM;
        }

        @Override
        public MemoryPolicy create(ModelConfig model, Path modelDir) {
            return RankingProjection.policy(retrieval(model), model, modelDir, ranking.projection());
        }

        @Override
        public String describe(ModelConfig model) {
            Window w = window.resolved(model);
            String layer = model == null
                    ? (refineFromLayer < 0 ? "auto" : String.valueOf(refineFromLayer))
                    : String.valueOf(RetrievalSettings.refineFrom(refineFromLayer, model.layers()));
            return "EM-LLM %s init + %s local + %s memory tokens (contiguity %.2f), events %d..%d at gamma %.2f%s"
                            .formatted(
                                    size(w.initTokens()),
                                    size(w.localTokens()),
                                    size(w.memoryTokens()),
                                    contiguity,
                                    eventMinTokens,
                                    eventMaxTokens,
                                    gamma,
                                    refinement == RetrievalSettings.Refinement.NONE
                                            ? ""
                                            : ", " + refinement.name().toLowerCase(Locale.ROOT)
                                                    + " refinement from layer " + layer)
                    + ranking.describe();
        }
    }

    /**
     * SirLLM: {@code sinkTokens}, the {@code scoredTokens} of highest token entropy and the {@code recentTokens} most
     * recent, scores decayed by {@code decay} per turn. {@link #AUTO} sizes keep the reference code's default split (1000
     * scored + 1000 recent) where the model's trained context holds it, else share the trained context less the sinks
     * between them (4 + 510 + 510 for a 1024-token model): the cache is re-indexed from 0, so it must fit the positions
     * the model was trained on.
     */
    record SirLlm(int sinkTokens, int recentTokens, int scoredTokens, double decay) implements MemorySpec {
        static final int EACH = 1000; // recent and scored tokens each: the reference code's default

        public SirLlm {
            if (sinkTokens < 0 || recentTokens < AUTO || scoredTokens < AUTO || !(decay > 0 && decay <= 1)) {
                throw new IllegalArgumentException(
                        "SirLLM needs sinks >= 0, recent and scored tokens >= 0 (or auto) and a decay "
                                + "in (0, 1], got %d, %d, %d, %s"
                                        .formatted(sinkTokens, recentTokens, scoredTokens, decay));
            }
        }

        public static SirLlm defaults() {
            return new SirLlm(StreamingLlm.DEFAULT_SINK_TOKENS, AUTO, AUTO, 1.0);
        }

        /** {recent, scored} for {@code model}: sizes given stay, {@link #AUTO} ones share what the context leaves. */
        int[] sizes(ModelConfig model) {
            int room = Math.max(2, model.maxPositions() - sinkTokens);
            int recent = recentTokens != AUTO
                    ? recentTokens
                    : Math.max(1, Math.min(EACH, scoredTokens != AUTO ? room - scoredTokens : room / 2));
            return new int[] {recent, scoredTokens != AUTO ? scoredTokens : Math.max(1, Math.min(EACH, room - recent))};
        }

        @Override
        public Kind kind() {
            return Kind.SIRLLM;
        }

        @Override
        public MemoryPolicy create(ModelConfig model, Path modelDir) {
            int[] rs = sizes(model);
            return new io.engram.engine.memory.sirllm.SirLlm(sinkTokens, rs[0], rs[1], decay);
        }

        @Override
        public String describe(ModelConfig model) {
            int[] rs = model == null ? new int[] {recentTokens, scoredTokens} : sizes(model);
            return "SirLLM %d sinks + %s scored + %s recent, decay %.2f"
                    .formatted(sinkTokens, size(rs[1]), size(rs[0]), decay);
        }
    }

    private static String size(int n) {
        return n == AUTO ? "auto" : String.valueOf(n);
    }
}
