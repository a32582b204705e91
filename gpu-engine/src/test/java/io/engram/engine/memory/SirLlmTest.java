package io.engram.engine.memory;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.sirllm.SirLlm;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SirLlmTest {
    @TempDir
    Path tmp;

    @Test
    void keepsSinksTopEntropyTokensAndRecentOnesWithPositionsReindexed() {
        KvCache c = StreamingLlmTest.cacheWith(12, 4);
        float[] scores = {1, 1, 1, 8, 1, 9, 7, 1, 1, 1, 1, 1};
        for (KvBlock b : c.blocks()) {
            for (int s = 0; s < b.length(); s++) {
                b.setScore(s, scores[(int) b.seq(s)]);
            }
        }
        SirLlm p = new SirLlm(2, 3, 4, 0.5); // a cache of 9 tokens
        for (long first = 0; first < 8; first += 4) {
            AttentionPlan plan = p.plan(c, first, 4, 1);
            StreamingLlmTest.visible(plan)
                    .forEach((seq, pos) -> assertThat(pos)
                            .as("nothing evicted yet: stored positions")
                            .isEqualTo(seq.intValue()));
            p.afterStep(c, first, 4);
        }
        // the third step (4 tokens) overflows 9: keep 5 = sinks 0,1 + the three highest scores 5, 3, 6
        AttentionPlan plan = p.plan(c, 8, 4, 1);
        assertThat(p.kept(c)).containsExactly(0, 1, 3, 5, 6);
        Map<Long, Integer> v = StreamingLlmTest.visible(plan);
        assertThat(v)
                .containsExactlyInAnyOrderEntriesOf(
                        Map.of(0L, 0, 1L, 1, 3L, 2, 5L, 3, 6L, 4, 8L, 5, 9L, 6, 10L, 7, 11L, 8));
        assertThat(plan.queryPositions()).containsExactly(5, 6, 7, 8);
        p.afterStep(c, 8, 4);
        assertThat(p.kept(c)).containsExactly(0, 1, 3, 5, 6, 8, 9, 10, 11);
        // block 1 (4..7) keeps 5 and 6: it stays in engine memory
        assertThat(c.blocks().get(1).isResident(0)).isTrue();
    }

    @Test
    void evictionAndDecayHappenOncePerTurnHoweverManyStepsAndNeverInATransientStep() {
        KvCache c = StreamingLlmTest.cacheWith(16, 4);
        for (KvBlock b : c.blocks()) {
            for (int s = 0; s < b.length(); s++) {
                b.setScore(s, 10f + b.seq(s)); // later tokens score higher
            }
        }
        SirLlm p = new SirLlm(0, 0, 6, 0.5);
        turn(p, c, 0, 4);
        turn(p, c, 4, 4); // 8 > 6: one eviction before the turn keeps 2 (scores 13, 12 -> halved once)
        assertThat(p.kept(c)).containsExactly(2, 3, 4, 5, 6, 7);
        assertThat(p.snapshot(c, 0).retainedScores()).containsExactly(6f, 6.5f, 14f, 15f, 16f, 17f);
        // a question and its answer while the cache is full: attended, never evicting, never decaying
        c.beginTransient();
        for (long s = 8; s < 12; s++) {
            AttentionPlan plan = p.plan(c, s, 1, 1);
            assertThat(StreamingLlmTest.visible(plan).keySet())
                    .as("kept tokens and the step")
                    .contains(2L, 3L, 7L, s);
            p.afterStep(c, s, 1);
        }
        // the next turn starts where the question started (it was truncated away)
        turn(p, c, 8, 8); // one eviction: room for 8 > 6 keeps nothing but sinks (none here); no per-step eviction
        assertThat(p.kept(c)).containsExactly(8, 9, 10, 11, 12, 13, 14, 15);
        assertThat(p.snapshot(c, 0).retainedScores())
                .as("the turn's own tokens, not decayed")
                .containsExactly(18f, 19f, 20f, 21f, 22f, 23f, 24f, 25f);
    }

    /** One turn of {@code n} tokens from {@code first}, ingested in steps of 2 as the engine's prefill chunks would. */
    static void turn(SirLlm p, KvCache c, long first, int n) {
        p.beginTurn(c, first, n);
        for (long s = first; s < first + n; s += 2) {
            p.plan(c, s, 2, 1);
            p.afterStep(c, s, 2);
        }
        p.endTurn(c);
    }

    @Test
    void decayLetsNewerHighEntropyTokensWinAndUnkeptBlocksAreOffloaded() {
        KvCache c = StreamingLlmTest.cacheWith(24, 4);
        for (KvBlock b : c.blocks()) {
            for (int s = 0; s < b.length(); s++) {
                long t = b.seq(s);
                b.setScore(s, t == 5 ? 10f : t >= 12 ? 6f : 1f);
            }
        }
        SirLlm p = new SirLlm(0, 0, 6, 0.5); // 6 scored tokens (2 kept per 4-token step), halved at every eviction
        for (long first = 0; first < 24; first += 4) {
            p.plan(c, first, 4, 1);
            p.afterStep(c, first, 4);
        }
        // token 5 (10, halved at each eviction: 5, then 2.5) lost to the newer 6.0 tokens; without decay it would stay
        assertThat(p.kept(c)).doesNotContain(5L);
        SirLlm noDecay = new SirLlm(0, 0, 6, 1.0);
        KvCache c2 = StreamingLlmTest.cacheWith(24, 4);
        for (int i = 0; i < c.blocks().size(); i++) {
            for (int s = 0; s < 4; s++) {
                c2.blocks().get(i).setScore(s, c.blocks().get(i).score(s));
            }
        }
        for (long first = 0; first < 24; first += 4) {
            noDecay.plan(c2, first, 4, 1);
            noDecay.afterStep(c2, first, 4);
        }
        assertThat(noDecay.kept(c2)).contains(5L);
        assertThat(c.blocks().get(0).isResident(0))
                .as("no kept token in block 0")
                .isFalse();
        assertThat(c.unitStore().bytes()).isGreaterThan(0);
    }

    @Test
    void aCacheCoveringTheStreamIsFullAttentionOnAModel() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 8, 2, false));
            int[] tokens = RetrievalMemoryTest.stream(50);
            List<float[]> full = new ArrayList<>();
            List<float[]> sir = new ArrayList<>();
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
                    new SirLlm(4, 30, 30, 0.9),
                    Transformer.Logits.ALL,
                    (s, l) -> sir.add(l.clone()));
            for (int i = 0; i < full.size(); i++) {
                assertThat(sir.get(i)).as("position %d", i).isEqualTo(full.get(i));
            }
            List<float[]> small = new ArrayList<>();
            t.forward(
                    t.newCache(),
                    tokens,
                    null,
                    new SirLlm(4, 8, 8, 0.9),
                    Transformer.Logits.ALL,
                    (s, l) -> small.add(l.clone()));
            assertThat(small.get(15)).isEqualTo(full.get(15));
            assertThat(small.get(49)).isNotEqualTo(full.get(49));
        }
    }
}
