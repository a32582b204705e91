package io.engram.topology;

import io.engram.engine.memory.DuoSpec;
import io.engram.engine.memory.MemorySpec;
import io.engram.engine.memory.RankingSpec;
import io.engram.engine.memory.duo.DuoAttention;
import io.engram.topology.options.Option;
import io.engram.topology.options.ResolvedOptions;

/**
 * The memory policy the engine attends with (algorithms.md), as options: each policy's spec ({@link MemorySpec}) takes
 * the options it reads; defaults follow the papers.
 */
public final class MemoryOptions {
    private static final MemorySpec.EmLlm EM = MemorySpec.EmLlm.paper();
    private static final MemorySpec.InfLlm INF = MemorySpec.InfLlm.paper();
    private static final MemorySpec.Streaming STREAMING = MemorySpec.Streaming.defaults();
    private static final MemorySpec.SirLlm SIR = MemorySpec.SirLlm.defaults();

    public static final Option<MemorySpec.Kind> POLICY = Option.enumKey("engram.memory.policy", MemorySpec.Kind.class)
            .defaultValue(MemorySpec.defaults().kind())
            .description("How the engine attends over a session's memory (the default, EMLLM, keeps a session's engine "
                    + "memory bounded however long its stream): FULL (every token, exact, engine memory grows "
                    + "with the stream), STREAMING (StreamingLLM sinks + recent window), INFLLM (init + local window + "
                    + "top-k retrieved blocks), EMLLM (init + local window + surprise-segmented events by token budget), "
                    + "SIRLLM (sinks + highest-entropy tokens + recent, decayed per turn).");

    public static final Option<Integer> INIT_TOKENS = Option.intKey("engram.memory.init-tokens")
            .defaultValue(EM.window().initTokens())
            .check(n -> n >= -1, ">= -1")
            .description("INFLLM/EMLLM: first tokens of the stream every query attends to; -1: 128 where the model's "
                    + "trained context holds 128 + 4096 + 2048 tokens, else 1/16 of that context.");

    public static final Option<Integer> LOCAL_TOKENS = Option.intKey("engram.memory.local-tokens")
            .defaultValue(EM.window().localTokens())
            .check(n -> n > 0 || n == -1, "> 0 or -1")
            .description("INFLLM/EMLLM: sliding window of recent tokens attended at relative positions; keep it within "
                    + "the model's trained context. -1: 4096 where the model's trained context holds 128 + 4096 + 2048 "
                    + "tokens, else what the init and memory tokens leave of that context.");

    public static final Option<Integer> TOP_UNITS = Option.intKey("engram.memory.top-units")
            .defaultValue(INF.topUnits())
            .check(n -> n > 0 || n == -1, "> 0 or -1")
            .description(
                    "INFLLM: memory units (blocks of engram.engine.block-size tokens) retrieved per layer and step; "
                            + "-1: engram.memory.memory-tokens / 128 (16 at the papers' sizes).");

    public static final Option<Integer> MEMORY_TOKENS = Option.intKey("engram.memory.memory-tokens")
            .defaultValue(EM.window().memoryTokens())
            .check(n -> n > 0 || n == -1, "> 0 or -1")
            .description("EMLLM: tokens of memory (whole events) retrieved per layer and step; -1: 2048 where the "
                    + "model's trained context holds 128 + 4096 + 2048 tokens, else a quarter of that context.");

    public static final Option<Double> CONTIGUITY = Option.doubleKey("engram.memory.contiguity")
            .defaultValue(EM.contiguity())
            .check(v -> v >= 0 && v < 1, "in [0, 1)")
            .description("EMLLM: share of engram.memory.memory-tokens given to the neighbours of retrieved events "
                    + "(temporal contiguity buffer; the paper uses 0.3, 0 turns it off).");

    public static final Option<Integer> CACHED_BLOCKS = Option.intKey("engram.memory.cached-blocks")
            .defaultValue(INF.cachedBlocks())
            .check(n -> n >= 0, ">= 0")
            .description("INFLLM/EMLLM: blocks of retrieved memory kept in engine memory per layer (LRU); the rest is "
                    + "fetched from the memory store when retrieved.");

    public static final Option<Integer> REPR_TOKENS = Option.intKey("engram.memory.repr-tokens")
            .defaultValue(INF.reprTokens())
            .check(n -> n > 0, "> 0")
            .description("INFLLM/EMLLM: most attended tokens whose keys represent a unit for retrieval.");

    public static final Option<Boolean> RANKING_PROJECTION = Option.booleanKey("engram.memory.ranking-projection")
            .defaultValue(true)
            .description("INFLLM/EMLLM: rank units through the ranking projection beside the model "
                    + "(ranking.safetensors, learned with the model frozen) when the model has one; false ranks by "
                    + "the raw query.");

    public static final Option<Integer> LEXICAL_UNITS = Option.intKey("engram.memory.lexical-units")
            .defaultValue(RankingSpec.DEFAULT.lexicalUnits())
            .check(n -> n >= 0, ">= 0")
            .description("INFLLM/EMLLM: on a question's steps, also retrieve the units whose tokens best match the "
                    + "question's (BM25 over the session's units), each with the unit after it, on top of those the "
                    + "query ranks; 0 retrieves by the query alone, as the papers.");

    public static final Option<Double> SURPRISE_GAMMA = Option.doubleKey("engram.memory.surprise-gamma")
            .defaultValue(EM.gamma())
            .check(v -> v >= 0, ">= 0")
            .description("EMLLM: a token starts a new event when its surprise exceeds mean + gamma * std of the "
                    + "surprises in the local window before it.");

    public static final Option<Integer> EVENT_MIN = Option.intKey("engram.memory.event-min-tokens")
            .defaultValue(EM.eventMinTokens())
            .check(n -> n > 0, "> 0")
            .description("EMLLM: shorter events merge into the next one.");

    public static final Option<Integer> EVENT_MAX = Option.intKey("engram.memory.event-max-tokens")
            .defaultValue(EM.eventMaxTokens())
            .check(n -> n > 0, "> 0")
            .description("EMLLM: longer events are cut into pieces of this size.");

    public static final Option<io.engram.engine.memory.retrieval.RetrievalSettings.Refinement> REFINEMENT =
            Option.enumKey(
                            "engram.memory.refinement",
                            io.engram.engine.memory.retrieval.RetrievalSettings.Refinement.class)
                    .defaultValue(EM.refinement())
                    .description(
                            "EMLLM: move each surprise boundary to the best split of its neighbourhood by key similarity "
                                    + "(MODULARITY or CONDUCTANCE; NONE keeps surprise boundaries).");

    public static final Option<Integer> REFINE_FROM_LAYER = Option.intKey("engram.memory.refine-from-layer")
            .defaultValue(EM.refineFromLayer())
            .check(n -> n >= -1, ">= -1")
            .description("EMLLM: key similarity for refinement sums the layers from this one on; -1: the last 3/8 of "
                    + "the model's layers (EM-LLM's Mistral setting: 20 of 32).");

    public static final Option<Integer> SINK_TOKENS = Option.intKey("engram.memory.sink-tokens")
            .defaultValue(STREAMING.sinkTokens())
            .check(n -> n >= 0, ">= 0")
            .description("STREAMING/SIRLLM: attention-sink tokens at the start of the stream that are always kept.");

    public static final Option<Integer> RECENT_TOKENS = Option.intKey("engram.memory.recent-tokens")
            .defaultValue(STREAMING.recentTokens())
            .check(n -> n >= -1, ">= -1")
            .description(
                    "STREAMING/SIRLLM: most recent tokens kept; -1: STREAMING keeps the model's trained window less "
                            + "the sinks (the papers' setting, e.g. 4 + 1020 for a 1024-token model); SIRLLM shares the "
                            + "trained window less the sinks with its scored tokens, at most 1000 each (the reference's "
                            + "default: 4 + 1000 + 1000; 4 + 510 + 510 for a 1024-token model).");

    public static final Option<Integer> SCORED_TOKENS = Option.intKey("engram.memory.scored-tokens")
            .defaultValue(SIR.scoredTokens())
            .check(n -> n >= -1, ">= -1")
            .description("SIRLLM: tokens with the highest token entropy kept besides sinks and recent tokens; -1: "
                    + "what the trained window leaves after sinks and recent tokens, at most 1000.");

    public static final Option<Double> DECAY = Option.doubleKey("engram.memory.decay")
            .defaultValue(SIR.decay())
            .check(v -> v > 0 && v <= 1, "in (0, 1]")
            .description("SIRLLM: factor applied to every kept token's score at each eviction (older turns fade).");

    public static final Option<Boolean> DUO = Option.booleanKey("engram.memory.duo.enabled")
            .defaultValue(false)
            .description(
                    "DuoAttention: retrieval heads use engram.memory.policy, streaming heads only sinks + a recent "
                            + "window; their K/V rows behind it are dropped after each content event, so stored KV shrinks by "
                            + "their share. Needs a head pattern (engram calibrate-heads).");

    public static final Option<Double> DUO_SPARSITY = Option.doubleKey("engram.memory.duo.sparsity")
            .defaultValue(DuoSpec.DEFAULT_SPARSITY)
            .check(v -> v >= 0 && v <= 1, "in [0, 1]")
            .description("DuoAttention: share of KV heads made streaming heads (those with the lowest scores).");

    public static final Option<String> DUO_PATTERN = Option.stringKey("engram.memory.duo.pattern")
            .defaultValue("")
            .description("DuoAttention head-score file (one line per layer, a score per KV head); empty uses "
                    + "duo-heads.tsv in the model folder.");

    public static final Option<Integer> DUO_SINK_TOKENS = Option.intKey("engram.memory.duo.sink-tokens")
            .defaultValue(DuoAttention.DEFAULT_SINK_TOKENS)
            .check(n -> n >= 0, ">= 0")
            .description("DuoAttention: sink tokens of the streaming heads.");

    public static final Option<Integer> DUO_RECENT_TOKENS = Option.intKey("engram.memory.duo.recent-tokens")
            .defaultValue(DuoAttention.DEFAULT_RECENT_TOKENS)
            .check(n -> n >= 0, ">= 0")
            .description("DuoAttention: recent tokens of the streaming heads.");

    private MemoryOptions() {}

    /** The memory policy the options describe: {@link #POLICY}, wrapped in DuoAttention when {@link #DUO} is on. */
    public static MemorySpec spec(ResolvedOptions o) {
        return spec(o, o.get(POLICY), o.get(DUO));
    }

    private static RankingSpec ranking(ResolvedOptions o) {
        return new RankingSpec(o.get(RANKING_PROJECTION), o.get(LEXICAL_UNITS));
    }

    /** Policy {@code kind} (with DuoAttention when {@code duo}) at the sizes the options set, e.g. for a bench. */
    public static MemorySpec spec(ResolvedOptions o, MemorySpec.Kind kind, boolean duo) {
        if (o.get(EVENT_MIN) > o.get(EVENT_MAX)) {
            throw new IllegalArgumentException(EVENT_MIN.key() + " must not exceed " + EVENT_MAX.key());
        }
        MemorySpec.Window window = new MemorySpec.Window(o.get(INIT_TOKENS), o.get(LOCAL_TOKENS), o.get(MEMORY_TOKENS));
        MemorySpec base = switch (kind) {
            case FULL -> new MemorySpec.Full();
            case STREAMING -> new MemorySpec.Streaming(o.get(SINK_TOKENS), o.get(RECENT_TOKENS));
            case INFLLM ->
                new MemorySpec.InfLlm(window, o.get(TOP_UNITS), o.get(CACHED_BLOCKS), o.get(REPR_TOKENS), ranking(o));
            case EMLLM ->
                new MemorySpec.EmLlm(
                        window,
                        o.get(CONTIGUITY),
                        o.get(CACHED_BLOCKS),
                        o.get(REPR_TOKENS),
                        o.get(SURPRISE_GAMMA),
                        o.get(EVENT_MIN),
                        o.get(EVENT_MAX),
                        o.get(REFINEMENT),
                        o.get(REFINE_FROM_LAYER),
                        ranking(o));
            case SIRLLM ->
                new MemorySpec.SirLlm(o.get(SINK_TOKENS), o.get(RECENT_TOKENS), o.get(SCORED_TOKENS), o.get(DECAY));
        };
        return duo
                ? new DuoSpec(
                        base, o.get(DUO_SPARSITY), o.get(DUO_PATTERN), o.get(DUO_SINK_TOKENS), o.get(DUO_RECENT_TOKENS))
                : base;
    }
}
