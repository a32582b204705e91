package io.engram.engine.model.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.model.safetensors.HfCheckpoint;
import io.engram.engine.tensor.WeightTensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** {@link RotaryLayout}: HF's q/k row permutation, undone, gives the GGUF layout llama.cpp runs (checked on stories260K). */
class GgufHfLayoutTest {
    @Test
    void permutationOfOneHead() {
        // GGUF rows 0..3 of one head of 4: HF holds them as [0, 2, 1, 3]
        float[] gguf = {0, 1, 2, 3};
        assertThat(RotaryLayout.ggufToHf(gguf, 1, 4, 1)).containsExactly(0, 2, 1, 3);
        assertThat(RotaryLayout.hfToGguf(new float[] {0, 2, 1, 3}, 1, 4, 1)).containsExactly(0, 1, 2, 3);
        float[] eight = {0, 1, 2, 3, 4, 5, 6, 7};
        assertThat(RotaryLayout.ggufToHf(eight, 1, 8, 1)).containsExactly(0, 2, 4, 6, 1, 3, 5, 7);
    }

    @Test
    void roundTripsOnRandomMatrices() {
        Random rnd = new Random(3);
        float[] w = new float[4 * 16 * 5];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        assertThat(RotaryLayout.hfToGguf(RotaryLayout.ggufToHf(w, 4, 16, 5), 4, 16, 5))
                .containsExactly(w);
    }

    @Test
    void storiesHfCheckpointUnpermutedEqualsTheGgufBitForBit() {
        Path hf = TinyGgufModels.sharedDir().resolve("models/stories260K-hf");
        Path gguf = TinyGgufModels.storiesGguf("f32");
        Assumptions.assumeTrue(Files.isDirectory(hf) && Files.isRegularFile(gguf), "no model at " + hf + "; skipping");
        try (HfCheckpoint ck = HfCheckpoint.open(hf);
                GgufFile f = GgufFile.open(gguf)) {
            Map<String, WeightTensor> t = ck.tensors();
            for (int layer = 0; layer < 5; layer++) {
                for (String[] names : new String[][] {{"q_proj", "attn_q", "8"}, {"k_proj", "attn_k", "4"}}) {
                    float[] h = GgufFileTest.decodeAll(
                            t.get("model.layers." + layer + ".self_attn." + names[0] + ".weight"));
                    float[] g = GgufFileTest.decodeAll(f.tensor("blk." + layer + "." + names[1] + ".weight"));
                    int heads = Integer.parseInt(names[2]);
                    assertThat(RotaryLayout.hfToGguf(h, heads, 8, 64))
                            .as("layer %d %s", layer, names[0])
                            .containsExactly(g);
                    assertThat(h).as("negative control: HF order differs").isNotEqualTo(g);
                }
                float[] hv = GgufFileTest.decodeAll(t.get("model.layers." + layer + ".self_attn.v_proj.weight"));
                assertThat(hv)
                        .as("v is not permuted")
                        .containsExactly(GgufFileTest.decodeAll(f.tensor("blk." + layer + ".attn_v.weight")));
            }
        }
    }
}
