package io.engram.engine.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.HostBuf;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The same input gives bit-identical KV memory and logits on every run, across JIT warm-up and with worker threads:
 * replaying a stream after a failure must rebuild exactly the memory a run without failure has.
 */
class DeterminismTest {
    @TempDir
    Path tmp;

    @Test
    void kvMemoryAndLogitsAreBitIdenticalAcrossRunsAndWarmUp() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 32, 2, false));
            float[][] logits = new float[6][];
            float[][] keys = new float[6][];
            for (int r = 0; r < 6; r++) {
                KvCache c = t.newCache();
                int[] ids = new int[70];
                for (int i = 0; i < ids.length; i++) ids[i] = (i * 37) % 450;
                int rr = r;
                t.forward(c, ids, null, new FullAttention(), Transformer.Logits.LAST, (s, l) -> logits[rr] = l.clone());
                keys[r] = HostBuf.of(c.blocks().get(3).keys(2)).clone();
            }
            for (int r = 1; r < 6; r++) {
                assertThat(keys[r]).as("layer-2 keys of run %d", r).isEqualTo(keys[0]);
                assertThat(logits[r]).as("logits of run %d", r).isEqualTo(logits[0]);
            }
        }
    }
}
