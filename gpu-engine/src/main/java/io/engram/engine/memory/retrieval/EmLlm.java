package io.engram.engine.memory.retrieval;

import io.engram.engine.config.ModelConfig;
import io.engram.engine.kv.KvCache;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * EM-LLM (algorithms.md section 3): tokens that leave the local window are cut into events where the model's surprise
 * jumps ({@link EventBoundaries}, refined by key similarity), and every layer retrieves events by similarity up to a
 * token budget, plus a temporal-contiguity buffer of the retrieved events' neighbours. With uniform segmentation the
 * same retrieval runs over one-block units (an ablation: no episodes).
 */
public final class EmLlm extends RetrievalMemory {

    private final EventBoundaries events;

    EmLlm(RetrievalSettings settings, ModelConfig model, RankingProjection projection) {
        super(settings, model, projection);
        if (settings.topUnits() != 0 || settings.memoryTokens() < 1) {
            throw new IllegalArgumentException(
                    "EM-LLM retrieves by a memory token budget (top units 0, memory tokens >= 1); got " + settings);
        }
        this.events = new EventBoundaries(settings, layers, kvHeads, headDim);
    }

    @Override
    String name() {
        return "emllm";
    }

    @Override
    boolean episodes() {
        return cfg.segmentation() instanceof RetrievalSettings.Surprise;
    }

    @Override
    public boolean needsTokenScores() {
        return episodes();
    }

    @Override
    public long lastEpisodeBoundary(KvCache cache) {
        if (!episodes()) {
            return -1;
        }
        RetrievalState st = state(cache);
        long cut = st.units.isEmpty() ? -1 : st.units.getLast().end();
        for (long b : st.boundaries) {
            if (b < cache.nextSeq()) {
                cut = Math.max(cut, b);
            }
        }
        return cut;
    }

    @Override
    void pack(RetrievalState st, KvCache cache, long firstSeq, long end, long limit) {
        switch (cfg.segmentation()) {
            case RetrievalSettings.Uniform u -> packer.packBlocks(st, cache, limit);
            case RetrievalSettings.Surprise sp -> {
                events.mark(st.boundaries, cache, firstSeq, end, sp.gamma());
                if (sp.refinement() != RetrievalSettings.Refinement.NONE) {
                    events.refine(st.boundaries, st.packedEnd, cache, firstSeq, end, sp);
                }
                packer.packEvents(st, cache, limit, sp);
            }
        }
    }

    /**
     * The token budget for retrieved events in the current step: the memory tokens less what the step attends to
     * outside the window anyway, the init tokens and the remainder (tokens past the last unit not packed yet).
     */
    private long budgetTokens(RetrievalState st) {
        long initEnd = Math.min(cfg.initTokens(), st.window);
        long remainder = Math.max(0, st.window - Math.max(initEnd, st.packedEnd));
        return Math.max(0, cfg.memoryTokens() - initEnd - remainder);
    }

    @Override
    boolean overBudget(RetrievalState st, List<Unit> units) {
        return st.unitTokens > budgetTokens(st);
    }

    @Override
    void pick(RetrievalState st, int layer, UnitRanking ranking, List<Integer> rank, Set<Integer> picked) {
        long budget = budgetTokens(st);
        long contBudget = cfg.contiguity() > 0 ? (long) (cfg.contiguity() * budget + 1) : 0;
        long simBudget = budget - contBudget;
        long used = 0;
        while (ranking.hasNext()) {
            int i = ranking.next();
            rank.add(i);
            int len = st.units.get(i).length();
            if (used + len > simBudget) {
                // the event that crosses the budget stays if that lands closer to the budget than dropping it
                if (used + len - simBudget < simBudget - used) {
                    picked.add(i);
                }
                break;
            }
            picked.add(i);
            used += len;
        }
        if (contBudget > 0) {
            contiguity(st, layer, rank, picked, contBudget);
        }
    }

    /** The temporal-contiguity buffer: neighbours of retrieved events (new first, then earlier ones kept). */
    private void contiguity(RetrievalState st, int layer, List<Integer> rank, Set<Integer> picked, long budget) {
        List<Unit> units = st.units;
        Set<Integer> similar = new HashSet<>(picked);
        List<Integer> candidates = new ArrayList<>();
        for (int i : rank) {
            if (!similar.contains(i)) {
                continue;
            }
            for (int nb : new int[] {i + 1, i - 1}) {
                if (nb >= 0 && nb < units.size() && !similar.contains(nb) && !candidates.contains(nb)) {
                    candidates.add(nb);
                }
            }
        }
        for (Unit old : st.contiguity.get(layer)) {
            int idx = Collections.binarySearch(units, old, Comparator.comparingLong(Unit::start));
            if (idx >= 0 && units.get(idx) == old && !similar.contains(idx) && !candidates.contains(idx)) {
                candidates.add(idx);
            }
        }
        List<Unit> buffer = new ArrayList<>();
        long used = 0;
        for (int i : candidates) {
            int len = units.get(i).length();
            if (used + len > budget) {
                continue;
            }
            picked.add(i);
            buffer.add(units.get(i));
            used += len;
        }
        st.contiguity.set(layer, buffer);
    }
}
