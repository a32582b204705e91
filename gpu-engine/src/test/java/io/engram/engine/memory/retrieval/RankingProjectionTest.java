package io.engram.engine.memory.retrieval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.config.ModelConfig;
import io.engram.engine.config.ModelFormatException;
import io.engram.engine.memory.MemorySpec;
import io.engram.engine.memory.SmallModelConfig;
import io.engram.engine.safetensors.SafetensorsWriter;
import io.engram.engine.tensor.DType;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ranking projection file (training/engram_train/rank_adapter.py) is read with the layout the trainer writes (row
 * {@code g * headDim + i} gives KV head g's element i), is used by InfLLM and EM-LLM only when switched on and trained
 * for their window, and a damaged file is refused with its name and what is wrong. That the engine ranks with it as
 * the training layout does is RetrievalLayoutParityTest's.
 */
class RankingProjectionTest {

    private static final int LAYERS = 2;
    private static final int KV = 2;
    private static final int D = 16;

    @TempDir
    Path dir;

    /** 2 layers, 2 KV heads of 16 dimensions (LAYERS, KV, D), trained to 1,024 positions: a 704-token window. */
    private static ModelConfig model() {
        return SmallModelConfig.of(1024);
    }

    /** Layer l's matrix for head g: element (i, j) = 1 + 100 l + 10 g + i - 2 j (every entry distinct per head). */
    private static float[] matrix(int layer) {
        float[] m = new float[KV * D * D];
        for (int g = 0; g < KV; g++) {
            for (int i = 0; i < D; i++) {
                for (int j = 0; j < D; j++) {
                    m[(g * D + i) * D + j] = 1 + 100 * layer + 10 * g + i - 2 * j;
                }
            }
        }
        return m;
    }

    private Path write(String local, int layers, long[] shape, float poison) throws Exception {
        SafetensorsWriter w = new SafetensorsWriter();
        if (local != null) {
            w.metadata("local_tokens", local);
        }
        for (int l = 0; l < layers; l++) {
            float[] m = matrix(l);
            if (l == 1) {
                m[5] = poison;
            }
            w.add("layers." + l + ".query", DType.F32, shape, m);
        }
        Path f = dir.resolve(RankingProjection.FILE);
        w.write(f);
        return f;
    }

    @Test
    void appliesEachKvHeadsMatrixToThatHeadsQuery() throws Exception {
        RankingProjection p = RankingProjection.read(write("704", LAYERS, new long[] {KV * D, D}, 3f), model());
        assertThat(p.localTokens()).isEqualTo(704);
        float[] q = new float[KV * D];
        for (int k = 0; k < q.length; k++) {
            q[k] = (k % 7) - 3 + 0.25f * k;
        }
        for (int l = 0; l < LAYERS; l++) {
            float[] m = matrix(l);
            if (l == 1) {
                m[5] = 3f;
            }
            float[] out = p.apply(l, q);
            for (int g = 0; g < KV; g++) {
                for (int i = 0; i < D; i++) {
                    double want = 0;
                    for (int j = 0; j < D; j++) {
                        want += (double) m[(g * D + i) * D + j] * q[g * D + j];
                    }
                    assertThat(out[g * D + i])
                            .as("layer %d head %d element %d", l, g, i)
                            .isEqualTo((float) want);
                }
            }
        }
    }

    @Test
    void retrievalPoliciesRankThroughTheFileBesideTheModelWhenOnAndTrainedForTheirWindow() throws Exception {
        write("704", LAYERS, new long[] {KV * D, D}, 3f);
        MemorySpec.InfLlm inf = MemorySpec.InfLlm.paper(); // sized for 1,024 positions: a 704-token window
        MemorySpec.EmLlm em = MemorySpec.EmLlm.paper();
        assertThat(((RetrievalMemory) inf.create(model(), dir)).projection()).isNotNull();
        assertThat(((RetrievalMemory) em.create(model(), dir)).projection()).isNotNull();
        io.engram.engine.memory.RankingSpec off = inf.ranking().withProjection(false);
        MemorySpec.InfLlm infOff =
                new MemorySpec.InfLlm(inf.window(), inf.topUnits(), inf.cachedBlocks(), inf.reprTokens(), off);
        MemorySpec.EmLlm emOff = new MemorySpec.EmLlm(
                em.window(),
                em.contiguity(),
                em.cachedBlocks(),
                em.reprTokens(),
                em.gamma(),
                em.eventMinTokens(),
                em.eventMaxTokens(),
                em.refinement(),
                em.refineFromLayer(),
                off);
        assertThat(((RetrievalMemory) infOff.create(model(), dir)).projection()).isNull();
        assertThat(((RetrievalMemory) emOff.create(model(), dir)).projection()).isNull();
        Path bare = java.nio.file.Files.createDirectory(dir.resolve("bare"));
        assertThat(((RetrievalMemory) inf.create(model(), bare)).projection()).isNull();
        // trained for another window: the queries it expects are rotated to another distance
        MemorySpec.InfLlm wide = new MemorySpec.InfLlm(
                new MemorySpec.Window(64, 512, 256),
                MemorySpec.AUTO,
                32,
                4,
                io.engram.engine.memory.RankingSpec.DEFAULT);
        assertThat(((RetrievalMemory) wide.create(model(), dir)).projection()).isNull();
    }

    @Test
    void aDamagedFileIsRefusedWithWhatIsWrong() throws Exception {
        assertThatThrownBy(() -> RankingProjection.read(write(null, LAYERS, new long[] {KV * D, D}, 3f), model()))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(RankingProjection.FILE)
                .hasMessageContaining("local_tokens");
        assertThatThrownBy(() -> RankingProjection.read(write("704", 1, new long[] {KV * D, D}, 3f), model()))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("holds 1 tensors, the model has 2 layers");
        assertThatThrownBy(() -> RankingProjection.read(write("704", LAYERS, new long[] {D * D, KV}, 3f), model()))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("expected F32 [32, 16]");
        assertThatThrownBy(() ->
                        RankingProjection.read(write("704", LAYERS, new long[] {KV * D, D}, Float.NaN), model()))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("layers.1.query holds NaN");
        assertThat(RankingProjection.read(write("704", LAYERS, new long[] {KV * D, D}, 3f), model())
                        .sharedFrom())
                .as("no shared_selection_layer: each layer ranks itself")
                .isEqualTo(-1);
        for (String bad : new String[] {"2", "x", "-2"}) {
            Path f = write("704", LAYERS, new long[] {KV * D, D}, 3f);
            SafetensorsWriter w = new SafetensorsWriter().metadata("local_tokens", "704");
            w.metadata("shared_selection_layer", bad);
            for (int l = 0; l < LAYERS; l++) {
                w.add("layers." + l + ".query", DType.F32, new long[] {KV * D, D}, matrix(l));
            }
            w.write(f);
            assertThatThrownBy(() -> RankingProjection.read(f, model()))
                    .isInstanceOf(ModelFormatException.class)
                    .hasMessageContaining("shared_selection_layer must be a layer below 2");
        }
    }
}
