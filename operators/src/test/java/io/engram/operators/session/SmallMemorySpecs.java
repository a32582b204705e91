package io.engram.operators.session;

import io.engram.engine.memory.MemorySpec;

/**
 * Memory specs small enough that a test's stream of a few hundred tokens leaves their windows: InfLLM and EM-LLM with 4
 * init + 24 local tokens and two units (InfLLM) or 16 memory tokens (EM-LLM, otherwise its paper settings), one cached
 * block per layer; StreamingLLM and SirLLM with 4 sinks and {@code recent} recent tokens (SirLLM also 16 scored).
 */
final class SmallMemorySpecs {

    private SmallMemorySpecs() {}

    static MemorySpec of(MemorySpec.Kind kind, int recent) {
        MemorySpec.EmLlm em = MemorySpec.EmLlm.paper();
        return switch (kind) {
            case FULL -> new MemorySpec.Full();
            case STREAMING -> new MemorySpec.Streaming(4, recent);
            case INFLLM ->
                new MemorySpec.InfLlm(
                        new MemorySpec.Window(4, 24, MemorySpec.AUTO),
                        2,
                        1,
                        4,
                        io.engram.engine.memory.RankingSpec.DEFAULT);
            case EMLLM ->
                new MemorySpec.EmLlm(
                        new MemorySpec.Window(4, 24, 16),
                        em.contiguity(),
                        1,
                        em.reprTokens(),
                        em.gamma(),
                        em.eventMinTokens(),
                        em.eventMaxTokens(),
                        em.refinement(),
                        em.refineFromLayer(),
                        io.engram.engine.memory.RankingSpec.DEFAULT);
            case SIRLLM -> new MemorySpec.SirLlm(4, recent, 16, 1.0);
        };
    }
}
