package io.engram.engine.attribution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.bench.AttributionBench;
import io.engram.engine.bench.AttributionTasks;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.session.PromptFormat;
import io.engram.engine.session.SessionEngine;
import io.engram.engine.tensor.DType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Both attribution tiers against known support ({@link AttributionTasks}: the answer continues a planted made-up name,
 * which a model can only predict by copying it from the needle) on the real stories260K, and on it and a tiny random
 * model the property that removing the segment the precise tier ranks first lowers the answer's log-probability more
 * than removing a random segment, on average.
 */
class AttributionGroundTruthTest {
    static final Path MODEL =
            Path.of("../../shared/models/stories260K-hf").toAbsolutePath().normalize();
    static final long SEED = 20261124L;

    @TempDir
    Path tmp;

    static SessionEngine engine(CpuBackend b, Model m) {
        Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(32, 128, 2, false));
        return new SessionEngine(t, m.tokenizer(), new FullAttention(), PromptFormat.CONTINUATION, 20);
    }

    @Test
    void bothTiersFindThePlantedNeedleOnStories260k() {
        assumeTrue(
                Files.isDirectory(MODEL),
                "no model at " + MODEL + "; skipping the stories260K attribution ground truth");
        try (Model m = Model.open(MODEL);
                CpuBackend b = new CpuBackend(2, false)) {
            AttributionBench bench =
                    new AttributionBench(engine(b, m), new AttributionBench.Settings(3, 10, 1024, 2, true));
            double[] fastRecall = {0};
            double[] preciseRecall = {0};
            double[] precisePrecision = {0};
            int sessions = 3;
            for (int s = 0; s < sessions; s++) {
                for (AttributionBench.Row r : bench.run(360, 40, 3, 1, SEED + s, line -> {})) {
                    System.out.printf(
                            "%s, %d tokens: P@3 %.2f R@3 %.2f, %.0f ms, %.1f values, %.1f candidates (seed %d)%n",
                            r.tier(),
                            r.tokens(),
                            r.precision(),
                            r.recall(),
                            r.msPerAttribution(),
                            r.valueCallsPerAttribution(),
                            r.candidates(),
                            SEED + s);
                    (r.tier().equals("fast") ? fastRecall : preciseRecall)[0] += r.recall() / sessions;
                    if (r.tier().equals("precise")) {
                        precisePrecision[0] += r.precision() / sessions;
                    }
                }
            }
            // one supporting segment per question: P@3 is at most 1/3; chance (3 of ~18 segments) gives R@3 ~0.17
            assertThat(preciseRecall[0]).as("precise recall@3").isGreaterThanOrEqualTo(0.6);
            assertThat(precisePrecision[0]).as("precise precision@3").isGreaterThanOrEqualTo(0.2);
            assertThat(fastRecall[0]).as("fast recall@3").isGreaterThan(0.17);
        }
    }

    @Test
    void removingTheTopCitedSegmentLowersTheAnswerMoreThanARandomOneOnStories260k() {
        assumeTrue(Files.isDirectory(MODEL), "no model at " + MODEL + "; skipping the stories260K removal property");
        try (Model m = Model.open(MODEL);
                CpuBackend b = new CpuBackend(2, false)) {
            double[] drops = removalDrops(engine(b, m), 2, 360);
            System.out.printf(
                    "stories260K: mean log-prob drop removing the top segment %.3f, a random one %.3f (seed %d)%n",
                    drops[0], drops[1], SEED);
            assertThat(drops[0])
                    .as("drop removing the top segment vs a random one")
                    .isGreaterThan(drops[1] + 0.5);
        }
    }

    @Test
    void removingTheTopCitedSegmentLowersTheAnswerMoreThanARandomOneOnATinyModel() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            double[] drops = removalDrops(engine(b, m), 2, 300);
            System.out.printf(
                    "tiny LLAMA_GQA: mean log-prob drop removing the top segment %.3f, a random one %.3f (seed %d)%n",
                    drops[0], drops[1], SEED);
            assertThat(drops[0])
                    .as("drop removing the top segment vs a random one")
                    .isGreaterThan(drops[1]);
        }
    }

    /**
     * Over generated sessions and their questions: the mean drop of the answer's log-probability (all segments vs all
     * but one) when the precise tier's top segment is removed, and when a random segment is (seeded).
     */
    static double[] removalDrops(SessionEngine engine, int sessions, int tokens) {
        double top = 0;
        double random = 0;
        int cases = 0;
        Random pick = new Random(SEED);
        for (int s = 0; s < sessions; s++) {
            AttributionTasks.Session session =
                    new AttributionTasks(engine.tokenizer()).generate(tokens, 40, 3, 1, new Random(SEED + 17 * s));
            KvCache mem = engine.newMemory();
            for (int i = 0; i < session.events().size(); i++) {
                engine.ingest(mem, session.events().get(i), i);
            }
            int[] preamble = Segmenter.preamble(mem, 8);
            for (AttributionTasks.Question q : session.questions()) {
                int[] answer = engine.tokenizer().encode(q.answer(), false);
                int[] question = engine.questionTokens(q.question(), mem.nextSeq());
                SessionEngine.Traced traced = engine.trace(mem, q.question(), answer);
                List<Segment> all = traced.segments();
                PreciseTier.Outcome o = PreciseTier.run(
                        engine.model(),
                        engine.policy(),
                        preamble,
                        all,
                        question,
                        answer,
                        new TracSearch.Settings(3, 2, 0.2, 2.0, SEED));
                List<int[]> tokensOf = new ArrayList<>();
                for (Segment g : all) {
                    tokensOf.add(g.tokens());
                }
                AnswerScorer scorer =
                        new AnswerScorer(engine.model(), engine.policy(), preamble, tokensOf, question, answer);
                BitSet everything = new BitSet();
                everything.set(0, all.size());
                double v = scorer.value(everything);
                top += v
                        - scorer.value(
                                without(everything, o.top().get(0).segment().index()));
                random += v - scorer.value(without(everything, pick.nextInt(all.size())));
                cases++;
            }
        }
        return new double[] {top / cases, random / cases};
    }

    static BitSet without(BitSet s, int i) {
        BitSet w = (BitSet) s.clone();
        w.clear(i);
        return w;
    }

    @Test
    void theScorersPrefixReuseGivesTheValuesOfAFreshRun() {
        assumeTrue(Files.isDirectory(MODEL), "no model at " + MODEL + "; skipping");
        try (Model m = Model.open(MODEL);
                CpuBackend b = new CpuBackend(2, false)) {
            SessionEngine engine = engine(b, m);
            AttributionTasks.Session session =
                    new AttributionTasks(engine.tokenizer()).generate(200, 30, 1, 1, new Random(SEED));
            KvCache mem = engine.newMemory();
            for (int i = 0; i < session.events().size(); i++) {
                engine.ingest(mem, session.events().get(i), i);
            }
            List<int[]> tokensOf = new ArrayList<>();
            for (Segment g : engine.segmenter().segments(mem)) {
                tokensOf.add(g.tokens());
            }
            int[] q = engine.questionTokens(session.questions().get(0).question(), mem.nextSeq());
            int[] a = engine.tokenizer().encode(session.questions().get(0).answer(), false);
            AnswerScorer reused = new AnswerScorer(engine.model(), engine.policy(), new int[] {1}, tokensOf, q, a);
            Random rnd = new Random(SEED);
            for (int k = 0; k < 6; k++) {
                BitSet s = new BitSet();
                for (int i = 0; i < tokensOf.size(); i++) {
                    s.set(i, rnd.nextBoolean());
                }
                double fresh =
                        new AnswerScorer(engine.model(), engine.policy(), new int[] {1}, tokensOf, q, a).value(s);
                assertThat(reused.value(s))
                        .as("subset %s", s)
                        .isCloseTo(fresh, org.assertj.core.data.Offset.offset(1e-4));
            }
            assertThat(reused.tokensRun()).isLessThan(6L * (mem.nextSeq() + q.length + a.length));
        }
    }
}
