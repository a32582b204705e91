package io.engram.engine.memory.retrieval;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.ModelConfig;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.retrieval.RetrievalMemory.Unit;
import io.engram.engine.model.Model;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The lexical half of question-time retrieval: BM25 over the units, and the units it adds to a question's steps. */
class LexicalMatchTest {
    private static final int BS = 4;
    private static final int COMMON = 7; // in every unit
    private static final int KEY_A = 300; // rare: only in unit [24, 28)
    private static final int KEY_B = 301;
    private static final int VALUE = 302; // in the unit after it, [28, 32)

    @TempDir
    Path tmp;

    Model model;
    CpuBackend backend;

    @BeforeEach
    void open() {
        model = Model.openHuggingFace(TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42));
        backend = new CpuBackend(1, false);
    }

    @AfterEach
    void close() {
        backend.close();
        model.close();
    }

    /**
     * 48 tokens in blocks of 4: every block holds COMMON, block 6 the key (two adjacent tokens), block 7 the value,
     * block 8 the key's tokens apart; keys favour blocks 2, 3.
     */
    private KvCache stream() {
        ModelConfig c = model.config();
        KvCache cache = new KvCache(backend, c.layers(), c.kvDim(), BS);
        int n = 12 * BS;
        int[] tokens = new int[n];
        int[] pos = new int[n];
        for (int i = 0; i < n; i++) {
            pos[i] = i;
            tokens[i] = i % BS == 0 ? COMMON : 20 + i; // other tokens once each
        }
        tokens[25] = KEY_A;
        tokens[26] = KEY_B;
        tokens[29] = VALUE;
        tokens[33] = KEY_B; // both key tokens again in [32, 36), apart and in the other order
        tokens[35] = KEY_A;
        for (KvCache.Placement p : cache.append(tokens, pos, null)) {
            float[] row = new float[c.kvDim()];
            for (int j = 0; j < p.count(); j++) {
                java.util.Arrays.fill(row, 0f);
                long block = p.block().firstSeq() / BS;
                row[0] = block == 2 || block == 3 ? 1f : 0f;
                for (int l = 0; l < c.layers(); l++) {
                    backend.write(p.block().keys(l), (p.slot() + j) * c.kvDim(), row, 0, row.length);
                }
            }
        }
        return cache;
    }

    private RetrievalMemory policy(int lexicalUnits) {
        RetrievalSettings s =
                RetrievalSettings.infLlm().withWindow(4, 8).withTopUnits(2).withCachedBlocks(0);
        s = new RetrievalSettings(
                s.initTokens(),
                s.localTokens(),
                s.reprTokens(),
                s.topUnits(),
                s.memoryTokens(),
                s.contiguity(),
                s.cachedBlocks(),
                s.segmentation(),
                lexicalUnits);
        return RetrievalMemory.of(s, model.config());
    }

    private static void drive(RetrievalMemory p, KvCache cache, int kvHeads) {
        for (long s = 0; s < cache.nextSeq(); s += BS) {
            p.plan(cache, s, BS, kvHeads);
            p.afterStep(cache, s, BS);
        }
    }

    /** A query that, rotated to the memory's fixed distance, favours keys along dimension 0 (blocks 2 and 3). */
    private float[] query() {
        ModelConfig c = model.config();
        float[] cs = new float[c.headDim() / 2];
        float[] sn = new float[c.headDim() / 2];
        c.ropeTable().angles(-8, cs, sn); // the window's local tokens
        float[] q = new float[c.heads() * c.headDim()];
        q[0] = 1f; // query head 0 (KV head 0)
        c.ropeTable().rotate(q, 0, cs, sn);
        return q;
    }

    /** The units layer 0 attends to at a step of {@code tokens} appended at the end of the stream. */
    private List<Long> selected(RetrievalMemory p, KvCache cache, boolean question, int... tokens) {
        ModelConfig c = model.config();
        if (question) {
            cache.beginTransient();
        }
        long first = cache.nextSeq();
        int[] pos = new int[tokens.length];
        for (int i = 0; i < pos.length; i++) {
            pos[i] = (int) first + i;
        }
        cache.append(tokens, pos, null);
        AttentionPlan step = p.plan(cache, first, tokens.length, c.kvHeads());
        p.planLayer(cache, 0, step, query());
        return p.selected(cache, 0).stream().map(Unit::start).toList();
    }

    @Test
    void bm25RanksTheUnitHoldingTheRareTokensFirstAndTokensOfEveryUnitWeighNothing() {
        KvCache cache = stream();
        RetrievalMemory p = policy(1);
        drive(p, cache, model.config().kvHeads());
        List<Unit> units = p.units(cache);
        assertThat(units).extracting(Unit::start).containsExactly(4L, 8L, 12L, 16L, 20L, 24L, 28L, 32L, 36L);
        double[] score = LexicalMatch.scores(units, cache, new int[] {COMMON, KEY_A, KEY_B, COMMON, 9999});
        assertThat(score[5]).isGreaterThan(0);
        for (int u = 0; u < units.size(); u++) {
            if (u != 5 && u != 7) {
                assertThat(score[u])
                        .as("unit %d holds only the common token", u)
                        .isLessThan(score[5] / 20);
            }
        }
        // the key's tokens side by side outrank the same tokens apart (which would win a tie: the later unit)
        assertThat(LexicalMatch.top(units, cache, new int[] {KEY_A, KEY_B}, 3)).containsExactly(5, 7);
        assertThat(LexicalMatch.top(units, cache, new int[] {KEY_B, KEY_A}, 3)).containsExactly(7, 5);
        assertThat(LexicalMatch.top(units, cache, new int[] {9999}, 3)).isEmpty();
        // a token every unit holds scores every unit alike: ties go to the later unit
        assertThat(LexicalMatch.top(units, cache, new int[] {COMMON}, 2)).containsExactly(8, 7);
    }

    @Test
    void aQuestionsStepsAlsoRetrieveTheUnitItsWordsMatchAndTheUnitAfterIt() {
        KvCache cache = stream();
        RetrievalMemory p = policy(1);
        drive(p, cache, model.config().kvHeads());
        // the query alone ranks blocks 2 and 3 (units [8, 12) and [12, 16)); the question's key words add [24, 28) and
        // the value's unit after it
        assertThat(selected(p, cache, true, COMMON, KEY_A, KEY_B, COMMON)).containsExactly(8L, 12L, 24L, 28L);
        // the answer's steps keep the question's match
        assertThat(selected(p, cache, false, 55)).containsExactly(8L, 12L, 24L, 28L);
        cache.truncate(48);
        // the same tokens ingested as content: retrieval by the query alone
        assertThat(selected(p, cache, false, COMMON, KEY_A, KEY_B, COMMON)).containsExactly(8L, 12L);
    }

    @Test
    void withoutLexicalUnitsAQuestionRetrievesByTheQueryAlone() {
        KvCache cache = stream();
        RetrievalMemory p = policy(0);
        drive(p, cache, model.config().kvHeads());
        assertThat(selected(p, cache, true, COMMON, KEY_A, KEY_B, COMMON)).containsExactly(8L, 12L);
    }
}
