package io.engram.engine.memory;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.memory.streaming.StreamingLlm;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StreamingLlmTest {
    @TempDir
    Path tmp;

    static KvCache cacheWith(int tokens, int blockSize) {
        KvCache c = new KvCache(new CpuBackend(1, false), 1, 4, blockSize);
        int[] t = new int[tokens];
        int[] p = new int[tokens];
        for (int i = 0; i < tokens; i++) {
            p[i] = i;
        }
        c.append(t, p, null);
        return c;
    }

    /** (sequence index -> position) of every key the plan shows the first KV head. */
    static Map<Long, Integer> visible(AttentionPlan plan) {
        Map<Long, Integer> out = new HashMap<>();
        for (KvSpan s : plan.spans(0)) {
            for (int slot = s.from(); slot < s.to(); slot++) {
                assertThat(out.put(s.block().seq(slot), s.positionOf(slot)))
                        .as("each key once")
                        .isNull();
            }
        }
        return out;
    }

    @Test
    void byDefaultTheCacheIsTheModelsTrainedWindowAsInThePaper(
            @org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
        java.nio.file.Path dir = io.engram.engine.model.synthetic.TinyModels.write(
                tmp.resolve("m"),
                io.engram.engine.model.synthetic.TinyModels.Variant.LLAMA,
                io.engram.engine.tensor.DType.F32,
                1);
        io.engram.engine.config.ModelConfig c =
                io.engram.engine.config.ModelConfig.fromHuggingFace(dir.resolve("config.json"));
        var p = (io.engram.engine.memory.streaming.StreamingLlm)
                MemorySpec.Streaming.defaults().create(c, null);
        assertThat(p.recentTokens()).isEqualTo(c.maxPositions() - 4);
        var set = (io.engram.engine.memory.streaming.StreamingLlm) new MemorySpec.Streaming(4, 100).create(c, null);
        assertThat(set.recentTokens()).isEqualTo(100);
    }

    @Test
    void keepsSinksAndTheRecentWindowWithPositionsReindexed() {
        KvCache c = cacheWith(40, 8); // 37 past tokens + a step of 3 (seq 37..39)
        AttentionPlan plan = new StreamingLlm(4, 10).plan(c, 37, 3, 2);
        Map<Long, Integer> v = visible(plan);
        List<Long> seqs = new ArrayList<>(v.keySet());
        seqs.sort(null);
        // sinks 0..3, window 27..36 (10 recent), step 37..39
        List<Long> expected = new ArrayList<>();
        for (long s = 0; s < 4; s++) {
            expected.add(s);
        }
        for (long s = 27; s < 40; s++) {
            expected.add(s);
        }
        assertThat(seqs).isEqualTo(expected);
        for (long s = 0; s < 4; s++) {
            assertThat(v.get(s)).isEqualTo((int) s);
        }
        for (long s = 27; s < 40; s++) {
            assertThat(v.get(s)).as("seq %d", s).isEqualTo((int) (4 + s - 27));
        }
        assertThat(plan.queryPositions()).containsExactly(14, 15, 16);
        assertThat(plan.spans(1)).isEqualTo(plan.spans(0));
    }

    @Test
    void aBudgetCoveringTheStreamIsFullAttentionExactly() {
        KvCache c = cacheWith(20, 8);
        AttentionPlan s = new StreamingLlm(4, 100).plan(c, 17, 3, 1);
        AttentionPlan f = new FullAttention().plan(c, 17, 3, 1);
        assertThat(visible(s)).isEqualTo(visible(f));
        assertThat(s.queryPositions()).isEqualTo(f.queryPositions());
    }

    @Test
    void unlimitedBudgetGivesFullAttentionLogitsOnAModel() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 8, 2, false));
            int[] tokens = new int[50];
            for (int i = 0; i < tokens.length; i++) {
                tokens[i] = (i * 31) % 400;
            }
            List<float[]> full = new ArrayList<>();
            List<float[]> streaming = new ArrayList<>();
            t.forward(
                    t.newCache(),
                    tokens,
                    null,
                    new FullAttention(),
                    Transformer.Logits.ALL,
                    (s, l) -> full.add(l.clone()));
            t.forward(
                    t.newCache(),
                    tokens,
                    null,
                    new StreamingLlm(4, 1000),
                    Transformer.Logits.ALL,
                    (s, l) -> streaming.add(l.clone()));
            for (int i = 0; i < full.size(); i++) {
                assertThat(streaming.get(i)).as("position %d", i).isEqualTo(full.get(i));
            }
            // a small budget changes the logits once the stream outgrows it, and only then
            List<float[]> small = new ArrayList<>();
            t.forward(
                    t.newCache(),
                    tokens,
                    null,
                    new StreamingLlm(4, 12),
                    Transformer.Logits.ALL,
                    (s, l) -> small.add(l.clone()));
            assertThat(small.get(10)).isEqualTo(full.get(10));
            assertThat(small.get(49)).isNotEqualTo(full.get(49));
        }
    }
}
