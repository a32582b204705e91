package io.engram.engine.memory;

import io.engram.engine.backend.RopeStyle;
import io.engram.engine.config.Architecture;
import io.engram.engine.config.ModelConfig;
import io.engram.engine.config.RopeScaling;

/** A small Llama's configuration for memory tests: 2 layers, 4 query heads and 2 KV heads of 16 dimensions. */
public final class SmallModelConfig {

    private SmallModelConfig() {}

    /** The model trained to {@code maxPositions} positions (what the automatic window sizes follow). */
    public static ModelConfig of(int maxPositions) {
        return new ModelConfig(
                "m",
                Architecture.LLAMA,
                64,
                128,
                2,
                4,
                2,
                16,
                256,
                maxPositions,
                1e-5f,
                10000,
                new RopeScaling.None(),
                RopeStyle.HALF,
                true,
                false,
                1,
                new int[] {2});
    }
}
