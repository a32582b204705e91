package io.engram.engine.memory.retrieval;

import io.engram.engine.config.ModelConfig;
import io.engram.engine.kv.KvCache;
import java.util.List;
import java.util.Set;

/**
 * InfLLM (algorithms.md section 2): tokens that leave the local window are packed into units of one storage block
 * each, and every layer retrieves the {@code topUnits} units whose representative keys best match the step's query.
 */
public final class InfLlm extends RetrievalMemory {

    InfLlm(RetrievalSettings settings, ModelConfig model, RankingProjection projection) {
        super(settings, model, projection);
        if (settings.topUnits() < 1 || !(settings.segmentation() instanceof RetrievalSettings.Uniform)) {
            throw new IllegalArgumentException(
                    "InfLLM retrieves a number of uniform units per step (top units >= 1, uniform "
                            + "segmentation); got " + settings);
        }
    }

    @Override
    String name() {
        return "infllm";
    }

    @Override
    boolean episodes() {
        return false;
    }

    @Override
    void pack(RetrievalState st, KvCache cache, long firstSeq, long end, long limit) {
        packer.packBlocks(st, cache, limit);
    }

    @Override
    boolean overBudget(RetrievalState st, List<Unit> units) {
        return units.size() > cfg.topUnits();
    }

    @Override
    void pick(RetrievalState st, int layer, UnitRanking ranking, List<Integer> rank, Set<Integer> picked) {
        for (int i = 0; i < Math.min(cfg.topUnits(), st.units.size()); i++) {
            int next = ranking.next();
            rank.add(next);
            picked.add(next);
        }
    }
}
