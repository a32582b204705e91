package io.engram.engine.memory.retrieval;

import io.engram.engine.backend.RopeTable;
import io.engram.engine.config.ModelConfig;

/**
 * The query a layer ranks units with: per KV head, the sum of its query heads' mean queries rotated to the distance of
 * the fixed position (the local window's length), then the model's {@link RankingProjection} when it has one.
 */
final class RankingQuery {
    private final RopeTable rope;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final float[] cos;
    private final float[] sin;
    private final RankingProjection projection;

    RankingQuery(ModelConfig model, int distance, RankingProjection projection) {
        this.rope = model.ropeTable();
        this.heads = model.heads();
        this.kvHeads = model.kvHeads();
        this.headDim = model.headDim();
        this.cos = new float[headDim / 2];
        this.sin = new float[headDim / 2];
        rope.angles(distance, cos, sin); // the same rotation for every step and layer
        this.projection = projection;
    }

    RankingProjection projection() {
        return projection;
    }

    /** The layer whose choice of units later layers share ({@link RankingProjection#sharedFrom}); -1: per layer. */
    int sharedFrom() {
        return projection == null ? -1 : projection.sharedFrom();
    }

    /** The ranking query of {@code layer} for the step's mean query per head ({@code heads * headDim}). */
    float[] of(int layer, float[] queryMean) {
        float[] rotated = queryMean.clone();
        int group = heads / kvHeads;
        float[] out = new float[kvHeads * headDim];
        for (int h = 0; h < heads; h++) {
            rope.rotate(rotated, h * headDim, cos, sin);
            int g = h / group;
            for (int j = 0; j < headDim; j++) {
                out[g * headDim + j] += rotated[h * headDim + j];
            }
        }
        return projection == null ? out : projection.apply(layer, out);
    }
}
