package io.engram.engine.memory;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.RopeTable;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.config.ModelConfig;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.memory.retrieval.RetrievalMemory;
import io.engram.engine.memory.retrieval.RetrievalMemory.Unit;
import io.engram.engine.memory.retrieval.RetrievalSettings;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RetrievalMemoryTest {
    @TempDir
    Path tmp;

    Model model;
    CpuBackend backend;

    @BeforeEach
    void open() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        model = Model.openHuggingFace(dir);
        backend = new CpuBackend(2, false);
    }

    @AfterEach
    void close() {
        backend.close();
        model.close();
    }

    static int[] stream(int n) {
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = (i * 31 + i / 7) % 400;
        }
        return tokens;
    }

    private List<float[]> logits(Transformer t, MemoryPolicy policy, int[] tokens) {
        List<float[]> out = new ArrayList<>();
        t.forward(t.newCache(), tokens, null, policy, Transformer.Logits.ALL, (s, l) -> out.add(l.clone()));
        return out;
    }

    @Test
    void settingsPickOneClassPerAlgorithm() {
        ModelConfig c = model.config();
        assertThat(RetrievalMemory.of(RetrievalSettings.infLlm(), c))
                .isInstanceOf(io.engram.engine.memory.retrieval.InfLlm.class);
        RetrievalMemory em = RetrievalMemory.of(RetrievalSettings.emLlm(), c);
        assertThat(em).isInstanceOf(io.engram.engine.memory.retrieval.EmLlm.class);
        assertThat(em.needsTokenScores()).isTrue(); // surprise needs each token's score
        assertThat(RetrievalMemory.of(RetrievalSettings.infLlm(), c).needsTokenScores())
                .isFalse();
        // InfLLM's units are uniform: a top-k over surprise events is neither paper's method
        RetrievalSettings mixed = RetrievalSettings.emLlm().withTopUnits(4);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> RetrievalMemory.of(mixed, c))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("uniform");
    }

    @Test
    void whileTheStreamFitsTheLocalWindowBothSettingsAreFullAttention() {
        Transformer t = new Transformer(model.config(), model.weights(), backend, new EngineSettings(16, 8, 2, false));
        int[] tokens = stream(60);
        List<float[]> full = logits(t, new FullAttention(), tokens);
        RetrievalSettings inf = RetrievalSettings.infLlm().withWindow(4, 64).withTopUnits(1);
        RetrievalSettings em = RetrievalSettings.emLlm().withWindow(4, 64).withMemoryTokens(16, 0.3);
        for (RetrievalSettings s : List.of(inf, em)) {
            List<float[]> got = logits(t, RetrievalMemory.of(s, model.config()), tokens);
            for (int i = 0; i < full.size(); i++) {
                assertThat(got.get(i)).as("%s position %d", s.segmentation(), i).isEqualTo(full.get(i));
            }
        }
        // once the stream outgrows the window, retrieval (here 1 unit) changes the logits
        RetrievalMemory small =
                RetrievalMemory.of(RetrievalSettings.infLlm().withWindow(4, 16).withTopUnits(1), model.config());
        List<float[]> got = logits(t, small, tokens);
        assertThat(got.get(15)).isEqualTo(full.get(15));
        assertThat(got.get(59)).isNotEqualTo(full.get(59));
    }

    @Test
    void engineMemoryStaysBoundedAsTheStreamGrowsAndOffloadedUnitsComeBack() {
        int bs = 8;
        Transformer t = new Transformer(model.config(), model.weights(), backend, new EngineSettings(bs, 8, 2, false));
        RetrievalSettings s =
                RetrievalSettings.infLlm().withWindow(8, 32).withTopUnits(2).withCachedBlocks(2);
        RetrievalMemory policy = RetrievalMemory.of(s, model.config());
        KvCache cache = t.newCache();
        ModelConfig c = model.config();
        long bytesPerBlockLayer = 2L * bs * c.kvDim() * Float.BYTES;
        // pinned: 1 init block + window (32) + step (8) + the partly packed block + the filling block; per layer: LRU
        // of 2
        long bound = bytesPerBlockLayer * c.layers() * ((8 / bs) + (32 + 8) / bs + 2 + 2);
        long peak = 0;
        long at300 = 0;
        int[] tokens = stream(904);
        for (int i = 0; i < tokens.length; i += 8) {
            t.forward(
                    cache,
                    java.util.Arrays.copyOfRange(tokens, i, i + 8),
                    null,
                    policy,
                    Transformer.Logits.NONE,
                    (q, l) -> {});
            peak = Math.max(peak, cache.residentBytes());
            if (i + 8 == 304) {
                at300 = cache.residentBytes();
            }
        }
        assertThat(peak).isLessThanOrEqualTo(bound);
        assertThat(cache.residentBytes()).as("constant in the stream length").isEqualTo(at300);
        assertThat(cache.unitStore().bytes())
                .as("memory beyond the window went to the unit store")
                .isGreaterThan(0);
        assertThat(policy.units(cache)).hasSize((904 - 32 - 8) / bs);
        // decoding with retrieval: selected units come back from the store on demand
        float[][] last = new float[1][];
        for (int step = 0; step < 12; step++) {
            t.forward(
                    cache,
                    new int[] {(step * 13) % 400},
                    null,
                    policy,
                    Transformer.Logits.LAST,
                    (q, l) -> last[0] = l.clone());
            for (int l = 0; l < c.layers(); l++) {
                assertThat(policy.selected(cache, l)).hasSize(2);
            }
        }
        assertThat(cache.fetches()).isGreaterThan(0);
        assertThat(cache.residentBytes()).isLessThanOrEqualTo(bound);
        // a long continuation packs blocks (some land in the layers' LRUs), then a truncate moves the window back over
        // them: they are local again and must stay in engine memory while the LRUs evict
        long mark = cache.nextSeq();
        for (int step = 0; step < 40; step++) {
            t.forward(
                    cache,
                    new int[] {(step * 7) % 400},
                    null,
                    policy,
                    Transformer.Logits.LAST,
                    (q, l) -> last[0] = l.clone());
        }
        cache.truncate(mark);
        for (int step = 0; step < 40; step++) {
            t.forward(
                    cache,
                    new int[] {(step * 11) % 400},
                    null,
                    policy,
                    Transformer.Logits.LAST,
                    (q, l) -> last[0] = l.clone());
        }
        for (float v : last[0]) {
            assertThat(Float.isFinite(v)).isTrue();
        }
        for (float v : last[0]) {
            assertThat(Float.isFinite(v)).isTrue();
        }
    }

    /** A cache whose block j has every key of KV head 0 along dimension j (so its representative key is e_j). */
    private KvCache handBuilt(int blocks, int bs) {
        ModelConfig c = model.config();
        KvCache cache = new KvCache(backend, c.layers(), c.kvDim(), bs);
        int n = blocks * bs;
        int[] pos = new int[n];
        for (int i = 0; i < n; i++) {
            pos[i] = i;
        }
        for (KvCache.Placement p : cache.append(new int[n], pos, null)) {
            float[] row = new float[c.kvDim()];
            for (int j = 0; j < p.count(); j++) {
                java.util.Arrays.fill(row, 0f);
                row[(int) (p.block().firstSeq() / bs) % c.headDim()] = 1f;
                for (int l = 0; l < c.layers(); l++) {
                    backend.write(p.block().keys(l), (p.slot() + j) * c.kvDim(), row, 0, row.length);
                }
            }
        }
        return cache;
    }

    /** A mean query that, once rotated to the fixed distance, weighs the representative direction j by w[j]. */
    private float[] queryFor(RetrievalSettings s, float[] w) {
        ModelConfig c = model.config();
        RopeTable rope = c.ropeTable();
        float[] cs = new float[c.headDim() / 2];
        float[] sn = new float[c.headDim() / 2];
        rope.angles(-s.localTokens(), cs, sn);
        float[] q = new float[c.heads() * c.headDim()];
        System.arraycopy(w, 0, q, 0, w.length); // query head 0 (KV head 0)
        rope.rotate(q, 0, cs, sn);
        return q;
    }

    /** Drives plan/afterStep over a hand-built cache in steps of {@code step} tokens, as the engine would. */
    private static void drive(MemoryPolicy p, KvCache cache, int kvHeads, int step) {
        for (long s = 0; s < cache.nextSeq(); s += step) {
            int n = (int) Math.min(step, cache.nextSeq() - s);
            p.plan(cache, s, n, kvHeads);
            p.afterStep(cache, s, n);
        }
    }

    @Test
    void inflmRetrievesTheUnitsWhoseRepresentativeKeysMatchTheQueryAtAFixedPosition() {
        int bs = 4;
        ModelConfig c = model.config();
        RetrievalSettings s =
                RetrievalSettings.infLlm().withWindow(4, 8).withTopUnits(2).withCachedBlocks(0);
        RetrievalMemory p = RetrievalMemory.of(s, c);
        KvCache cache = handBuilt(12, bs); // 48 tokens: block 0 = init, units = blocks 1..9, window = 40..47
        drive(p, cache, c.kvHeads(), 4);
        assertThat(p.units(cache)).extracting(Unit::start).containsExactly(4L, 8L, 12L, 16L, 20L, 24L, 28L, 32L, 36L);
        // the next step (4 tokens) after a stream of 48
        int[] pos = {48, 49, 50, 51};
        cache.append(new int[4], pos, null);
        AttentionPlan step = p.plan(cache, 48, 4, c.kvHeads());
        assertThat(p.needsQueries(cache, 48, 4)).isTrue();
        float[] w = new float[c.headDim()];
        w[6] = 3f; // block 6 = unit [24, 28)
        w[2] = 1f; // block 2 = unit [8, 12)
        w[7] = -1f;
        AttentionPlan layer1 = p.planLayer(cache, 1, step, queryFor(s, w));
        assertThat(p.selected(cache, 1)).extracting(Unit::start).containsExactly(8L, 24L);
        // keys: init 0..3 and the two units at position 0; window 40..51 at positions 0.. relative to its start (40)
        java.util.Map<Long, Integer> seen = new java.util.TreeMap<>();
        for (KvSpan sp : layer1.spans(0)) {
            for (int slot = sp.from(); slot < sp.to(); slot++) {
                assertThat(seen.put(sp.block().seq(slot), sp.positionOf(slot))).isNull();
            }
        }
        java.util.Map<Long, Integer> expected = new java.util.TreeMap<>();
        for (long q = 0; q < 4; q++) {
            expected.put(q, 0);
        }
        for (long q = 8; q < 12; q++) {
            expected.put(q, 0);
        }
        for (long q = 24; q < 28; q++) {
            expected.put(q, 0);
        }
        for (long q = 40; q < 52; q++) {
            expected.put(q, (int) (q - 40));
        }
        assertThat(seen).isEqualTo(expected);
        assertThat(layer1.queryPositions()).containsExactly(8, 9, 10, 11);
        // engine memory: unit blocks not retrieved by any layer were offloaded, retrieved ones are resident for layer 1
        // only
        KvBlock b6 = cache.blocks().get(6);
        KvBlock b5 = cache.blocks().get(5);
        assertThat(b6.isResident(1)).isTrue();
        assertThat(b6.isResident(0)).isFalse();
        assertThat(b5.isResident(1)).isFalse();
        // a different query on another layer retrieves other units
        float[] w2 = new float[c.headDim()];
        w2[3] = 1f;
        w2[4] = 0.5f;
        p.planLayer(cache, 0, step, queryFor(s, w2));
        assertThat(p.selected(cache, 0)).extracting(Unit::start).containsExactly(12L, 16L);
    }

    @Test
    void aUnitBlockThatATruncateBringsBackIntoTheWindowStaysResidentWhenTheLruEvicts() {
        int bs = 4;
        ModelConfig c = model.config();
        RetrievalSettings s =
                RetrievalSettings.infLlm().withWindow(4, 8).withTopUnits(1).withCachedBlocks(0);
        RetrievalMemory p = RetrievalMemory.of(s, c);
        KvCache cache = handBuilt(12, bs); // units: blocks 1..9 ([4, 40)), window 40..47
        drive(p, cache, c.kvHeads(), 4);
        cache.append(new int[4], new int[] {48, 49, 50, 51}, null);
        AttentionPlan step = p.plan(cache, 48, 4, c.kvHeads());
        float[] w9 = new float[c.headDim()];
        w9[9] = 1f;
        p.planLayer(cache, 0, step, queryFor(s, w9));
        assertThat(p.selected(cache, 0)).extracting(Unit::start).containsExactly(36L); // block 9 enters layer 0's LRU
        p.afterStep(cache, 48, 4);
        // back to 44: the window (36..47) covers block 9 again, its unit is undone
        cache.truncate(44);
        cache.append(new int[4], new int[] {44, 45, 46, 47}, null);
        step = p.plan(cache, 44, 4, c.kvHeads());
        float[] w2 = new float[c.headDim()];
        w2[2] = 1f;
        AttentionPlan layer0 = p.planLayer(cache, 0, step, queryFor(s, w2)); // another unit: the LRU evicts
        assertThat(p.selected(cache, 0)).extracting(Unit::start).containsExactly(8L);
        KvBlock b9 = cache.blocks().get(9);
        assertThat(layer0.spans(0)).anySatisfy(sp -> assertThat(sp.block()).isSameAs(b9));
        assertThat(b9.isResident(0)).as("local again: not offloaded by the LRU").isTrue();
    }

    @Test
    void unitsWhoseRepresentativeTokensAreTheSameKeysInAnotherOrderTieExactly() {
        // floats whose sum depends on the order: ((x+y)+y)+y != ((y+y)+x)+y
        float x = 0.9370821f;
        float y = 0.48708737f;
        assertThat(((x + y) + y) + y).isNotEqualTo(((y + y) + x) + y);
        int bs = 4;
        ModelConfig c = model.config();
        KvCache cache = new KvCache(backend, c.layers(), c.kvDim(), bs);
        float[][] keys = { // block 0 init, blocks 1 and 2 the units, blocks 3 and 4 the window
            {0, 0, 0, 0}, {x, y, y, y}, {y, y, x, y}, {0, 0, 0, 0}, {0, 0, 0, 0}
        };
        int[] pos = new int[keys.length * bs];
        for (int i = 0; i < pos.length; i++) {
            pos[i] = i;
        }
        for (KvCache.Placement p : cache.append(new int[pos.length], pos, null)) {
            for (int j = 0; j < p.count(); j++) {
                long seq = p.block().seq(p.slot() + j);
                float[] row = new float[c.kvDim()];
                row[0] = keys[(int) (seq / bs)][(int) (seq % bs)];
                for (int l = 0; l < c.layers(); l++) {
                    backend.write(p.block().keys(l), (p.slot() + j) * c.kvDim(), row, 0, row.length);
                }
            }
        }
        RetrievalMemory p = RetrievalMemory.of(
                RetrievalSettings.infLlm().withWindow(4, 8).withTopUnits(1).withCachedBlocks(0), c);
        drive(p, cache, c.kvHeads(), 4);
        List<Unit> units = p.units(cache);
        assertThat(units).extracting(Unit::start).containsExactly(4L, 8L);
        for (int l = 0; l < c.layers(); l++) {
            assertThat(units.get(1).repr()[l])
                    .as("layer %d: the same four keys, summed in one order", l)
                    .containsExactly(units.get(0).repr()[l]);
        }
    }

    @Test
    void rankingDrawsUnitsByScoreThenIndexLikeAFullSort() {
        java.util.Random r = new java.util.Random(5);
        for (int trial = 0; trial < 50; trial++) {
            double[] score = new double[1 + r.nextInt(300)];
            for (int i = 0; i < score.length; i++) {
                score[i] = r.nextInt(20) / 4.0; // many ties
            }
            List<Integer> sorted = new ArrayList<>();
            for (int i = 0; i < score.length; i++) {
                sorted.add(i);
            }
            sorted.sort(java.util.Comparator.<Integer>comparingDouble(i -> -score[i])
                    .thenComparingInt(i -> i));
            io.engram.engine.memory.retrieval.UnitRanking ranking =
                    new io.engram.engine.memory.retrieval.UnitRanking.Exact(score);
            List<Integer> drawn = new ArrayList<>();
            while (ranking.hasNext()) {
                drawn.add(ranking.next());
            }
            assertThat(drawn).isEqualTo(sorted);
        }
    }

    @Test
    void emllmCutsEventsAtSurpriseSpikesWithinMinAndMaxSizes() {
        int bs = 16;
        ModelConfig c = model.config();
        RetrievalSettings s = new RetrievalSettings(4, 16, 4, 0, 32, 0, 4, new RetrievalSettings.Surprise(1.0, 4, 20));
        RetrievalMemory p = RetrievalMemory.of(s, c);
        KvCache cache = handBuilt(8, bs); // 128 tokens
        for (KvBlock b : cache.blocks()) {
            for (int slot = 0; slot < b.length(); slot++) {
                long t = b.seq(slot);
                // flat, with spikes at 30, 50, 52 (too close to 50: merges), none after
                float v = 1f;
                if (t == 30 || t == 50 || t == 52) {
                    v = 9f;
                }
                b.setScore(slot, v);
            }
        }
        drive(p, cache, c.kvHeads(), 8);
        // packed up to 128 - 16 = 112: [4,24) max-size cut, [24,30), [30,50), [50,70) (52 merged, then max cut), ...
        List<long[]> ranges = new ArrayList<>();
        for (Unit u : p.units(cache)) {
            ranges.add(new long[] {u.start(), u.end()});
            assertThat(u.length()).isBetween(4, 20);
        }
        assertThat(ranges)
                .extracting(r -> r[0] + ".." + r[1])
                .containsExactly("4..24", "24..30", "30..50", "50..70", "70..90", "90..110");
    }

    @Test
    void emllmRefinementMovesABoundaryToTheSplitOfKeySimilarity() {
        ModelConfig c = model.config();
        for (RetrievalSettings.Refinement r : RetrievalSettings.Refinement.values()) {
            KvCache cache = new KvCache(backend, c.layers(), c.kvDim(), 16);
            int n = 64;
            int[] pos = new int[n];
            for (int i = 0; i < n; i++) {
                pos[i] = i;
            }
            for (KvCache.Placement p : cache.append(new int[n], pos, null)) {
                for (int j = 0; j < p.count(); j++) {
                    long seq = p.block().seq(p.slot() + j);
                    float[] row = new float[c.kvDim()];
                    row[seq < 36 ? 0 : 1] = 1f; // two topics: tokens before 36 and from 36 on
                    for (int l = 0; l < c.layers(); l++) {
                        backend.write(p.block().keys(l), (p.slot() + j) * c.kvDim(), row, 0, row.length);
                    }
                    p.block().setScore(p.slot() + j, seq == 40 ? 9f : 1f); // surprise spikes 4 tokens late
                }
            }
            RetrievalSettings s =
                    new RetrievalSettings(4, 16, 4, 0, 32, 0, 4, new RetrievalSettings.Surprise(1.0, 4, 40, r, 0));
            RetrievalMemory p = RetrievalMemory.of(s, c);
            drive(p, cache, c.kvHeads(), 8);
            long expected = r == RetrievalSettings.Refinement.NONE ? 40 : 36;
            assertThat(p.units(cache)).as("%s", r).first().satisfies(u -> {
                assertThat(u.start()).isEqualTo(4);
                assertThat(u.end()).isEqualTo(expected);
            });
        }
    }

    @Test
    void emllmSelectsByTokenBudgetAndAddsTemporalNeighbours() {
        int bs = 4;
        ModelConfig c = model.config();
        // 11 units of 4 tokens; 16 memory tokens less the 4 init tokens (no remainder): a budget of 12 with 0.3
        // contiguity: (int)(3.6+1)=4 tokens of neighbours, 8 by similarity
        RetrievalSettings s = new RetrievalSettings(4, 8, 4, 0, 16, 0.3, 8, new RetrievalSettings.Uniform());
        RetrievalMemory p = RetrievalMemory.of(s, c);
        KvCache cache = handBuilt(14, bs); // 56 tokens: init block 0, units blocks 1..11, window 48..55
        drive(p, cache, c.kvHeads(), 4);
        assertThat(p.units(cache)).hasSize(11);
        cache.append(new int[4], new int[] {56, 57, 58, 59}, null);
        AttentionPlan step = p.plan(cache, 56, 4, c.kvHeads());
        float[] w = new float[c.headDim()];
        w[5] = 3f; // unit [20, 24)
        w[9] = 2f; // unit [36, 40)
        w[1] = 1f;
        p.planLayer(cache, 0, step, queryFor(s, w));
        // similarity: blocks 5 and 9 (8 tokens); contiguity: the best one's neighbour first (block 6)
        assertThat(p.selected(cache, 0)).extracting(Unit::start).containsExactly(20L, 24L, 36L);
        // the init tokens and the remainder count against the budget: with 12 memory tokens only 8 are left
        RetrievalMemory tight =
                RetrievalMemory.of(new RetrievalSettings(4, 8, 4, 0, 12, 0.3, 8, new RetrievalSettings.Uniform()), c);
        KvCache cache2 = handBuilt(14, bs);
        drive(tight, cache2, c.kvHeads(), 4);
        cache2.append(new int[4], new int[] {56, 57, 58, 59}, null);
        tight.planLayer(cache2, 0, tight.plan(cache2, 56, 4, c.kvHeads()), queryFor(s, w));
        assertThat(tight.selected(cache2, 0))
                .extracting(Unit::start)
                .containsExactly(20L); // 5 by similarity, 3 neighbours
    }

    @Test
    void aQuestionAndItsAnswerLeaveNoAttentionMassBehind() {
        java.nio.file.Path dir = tmp.resolve("m");
        RetrievalSettings s =
                RetrievalSettings.infLlm().withWindow(4, 16).withTopUnits(2).withCachedBlocks(0);
        List<String> events = List.of(
                "One two three four five six seven eight nine ten eleven twelve thirteen.",
                "Fourteen fifteen sixteen seventeen eighteen nineteen twenty and a lighthouse keeper.",
                "The vault code is seven four eight one and the ferry leaves at nine every morning.",
                "Gulls and puffins and one heron stood on the rocks of the reef near the harbour wall.");
        List<Unit> plain = units(dir, s, events, false);
        List<Unit> asked = units(dir, s, events, true);
        assertThat(plain).hasSizeGreaterThan(3);
        assertThat(asked).hasSameSizeAs(plain);
        for (int i = 0; i < plain.size(); i++) {
            assertThat(asked.get(i).start()).isEqualTo(plain.get(i).start());
            for (int l = 0; l < plain.get(i).repr().length; l++) {
                assertThat(asked.get(i).repr()[l])
                        .as("unit %d layer %d: the same representative keys", i, l)
                        .containsExactly(plain.get(i).repr()[l]);
            }
        }
    }

    /** The units of a session of {@code events}, with (or without) a question answered after each event. */
    private List<Unit> units(java.nio.file.Path dir, RetrievalSettings s, List<String> events, boolean ask) {
        Transformer t = new Transformer(model.config(), model.weights(), backend, new EngineSettings(4, 8, 1, false));
        RetrievalMemory p = RetrievalMemory.of(s, model.config());
        io.engram.engine.session.SessionEngine engine = new io.engram.engine.session.SessionEngine(
                t,
                io.engram.engine.tokenizer.Tokenizers.fromHuggingFace(dir),
                p,
                io.engram.engine.session.PromptFormat.PLAIN,
                4);
        KvCache mem = engine.newMemory();
        for (int i = 0; i < events.size(); i++) {
            engine.ingest(mem, events.get(i), i);
            if (ask) {
                engine.answer(
                        mem,
                        "What is the vault code of the harbour?",
                        io.engram.engine.generate.SamplingOptions.greedy(6),
                        io.engram.engine.generate.TokenListener.NONE);
            }
        }
        return p.units(mem);
    }

    @Test
    void aSessionRestoredMidStreamPicksTheSameRepresentativesAsOneThatNeverStopped() {
        java.nio.file.Path dir = tmp.resolve("m");
        RetrievalSettings s =
                RetrievalSettings.infLlm().withWindow(4, 16).withTopUnits(2).withCachedBlocks(0);
        List<String> events = List.of(
                "One two three four five six seven eight nine ten eleven twelve thirteen.",
                "Fourteen fifteen sixteen seventeen eighteen nineteen twenty and a lighthouse keeper.",
                "The vault code is seven four eight one and the ferry leaves at nine every morning.",
                "Gulls and puffins and one heron stood on the rocks of the reef near the harbour wall.");
        List<Unit> straight = units(dir, s, events, false);
        Transformer t = new Transformer(model.config(), model.weights(), backend, new EngineSettings(4, 8, 1, false));
        var tok = io.engram.engine.tokenizer.Tokenizers.fromHuggingFace(dir);
        RetrievalMemory before = RetrievalMemory.of(s, model.config());
        var engine = new io.engram.engine.session.SessionEngine(
                t, tok, before, io.engram.engine.session.PromptFormat.PLAIN, 4);
        KvCache mem = engine.newMemory();
        engine.ingest(mem, events.get(0), 0);
        engine.ingest(mem, events.get(1), 1);
        PolicySnapshot snap = before.snapshot(mem, 0);
        assertThat(snap.windowMass())
                .as("mass of tokens not packed yet is part of the state")
                .isNotEmpty();
        // a restart: a new policy instance that knows nothing but the snapshot
        RetrievalMemory after = RetrievalMemory.of(s, model.config());
        after.restore(mem, snap);
        var resumed = new io.engram.engine.session.SessionEngine(
                t, tok, after, io.engram.engine.session.PromptFormat.PLAIN, 4);
        resumed.ingest(mem, events.get(2), 2);
        resumed.ingest(mem, events.get(3), 3);
        List<Unit> restored = after.units(mem);
        assertThat(restored).hasSameSizeAs(straight);
        for (int i = 0; i < straight.size(); i++) {
            for (int l = 0; l < straight.get(i).repr().length; l++) {
                assertThat(restored.get(i).repr()[l])
                        .as("unit %d layer %d", i, l)
                        .containsExactly(straight.get(i).repr()[l]);
            }
        }
    }
}
