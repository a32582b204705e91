package io.engram.engine.bench;

import io.engram.engine.attribution.Candidates;
import io.engram.engine.attribution.PreciseTier;
import io.engram.engine.attribution.Segment;
import io.engram.engine.attribution.Segmenter;
import io.engram.engine.attribution.TracSearch;
import io.engram.engine.kv.KvCache;
import io.engram.engine.session.SessionEngine;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Measures both attribution tiers against ground truth ({@link AttributionTasks}): a generated session is ingested
 * through the session engine, then for each of its questions the fast tier traces the attention of the known answer
 * and the precise tier searches the fast tier's candidates; each returns its top-k segments, scored against the
 * segments that hold the question's needle. Precision@k is hits over segments returned, recall@k hits over supporting
 * segments; with one supporting segment and k = 5 the best precision is 0.2. Not a test: a measurement.
 */
public final class AttributionBench {

    /**
     * @param maxCandidates segments the precise tier considers at most (taken by fast score)
     * @param maxContextTokens tokens those candidates may hold together
     */
    public record Settings(int topK, int maxCandidates, int maxContextTokens, int permutations, boolean precise) {}

    /** Means over the questions of one session for one tier. */
    public record Row(
            int tokens,
            String tier,
            int questions,
            double precision,
            double recall,
            double msPerAttribution,
            double valueCallsPerAttribution,
            double candidates) {}

    private final SessionEngine engine;
    private final Settings settings;

    /** @param engine a session engine whose prompt format continues the question (see {@code PromptFormat.CONTINUATION}) */
    public AttributionBench(SessionEngine engine, Settings settings) {
        this.engine = engine;
        this.settings = settings;
    }

    /** One session of about {@code targetTokens} tokens with {@code needles} questions, each planted {@code copies} times. */
    public List<Row> run(
            int targetTokens, int wordsPerEvent, int needles, int copies, long seed, Consumer<String> progress) {
        return run(
                new AttributionTasks(engine.tokenizer())
                        .generate(targetTokens, wordsPerEvent, needles, copies, new Random(seed)),
                seed,
                progress);
    }

    /** {@code session}'s events ingested into a fresh memory, then each of its questions attributed. */
    public List<Row> run(AttributionTasks.Session session, long seed, Consumer<String> progress) {
        KvCache mem = engine.newMemory();
        for (int i = 0; i < session.events().size(); i++) {
            engine.ingest(mem, session.events().get(i), i);
            if (i % 50 == 49) {
                progress.accept("ingested %d of %d events"
                        .formatted(i + 1, session.events().size()));
            }
        }
        Acc fast = new Acc();
        Acc precise = new Acc();
        int[] preamble = Segmenter.preamble(mem, 8);
        for (AttributionTasks.Question q : session.questions()) {
            int[] answer = engine.tokenizer().encode(q.answer(), false);
            long t0 = System.nanoTime();
            SessionEngine.Traced traced = engine.trace(mem, q.question(), answer);
            long t1 = System.nanoTime();
            Set<Integer> truth = q.supporting(traced.segments());
            List<Integer> fastTop = fastTop(traced.segments(), traced.scores(), settings.topK());
            fast.add(fastTop, truth, t1 - t0, 0, 0);
            if (settings.precise()) {
                int[] question = engine.questionTokens(q.question(), mem.nextSeq());
                List<Segment> cands = Candidates.select(
                        traced.segments(),
                        traced.scores(),
                        question,
                        answer,
                        settings.maxCandidates(),
                        settings.maxContextTokens());
                TracSearch.Settings ts =
                        new TracSearch.Settings(settings.topK(), settings.permutations(), 0.2, 2.0, seed);
                PreciseTier.Outcome out =
                        PreciseTier.run(engine.model(), engine.policy(), preamble, cands, question, answer, ts);
                long t2 = System.nanoTime();
                List<Integer> top = new ArrayList<>();
                for (PreciseTier.Cited c : out.top()) {
                    top.add(c.segment().index());
                }
                precise.add(top, truth, t2 - t0, out.evaluations(), cands.size());
            }
            progress.accept("attributed question %d of %d"
                    .formatted(fast.n, session.questions().size()));
        }
        List<Row> rows = new ArrayList<>();
        rows.add(fast.row(session.tokens(), "fast"));
        if (settings.precise()) {
            rows.add(precise.row(session.tokens(), "precise"));
        }
        return rows;
    }

    /** The fast tier's top-k: segments by attention share, those with none left out. */
    public static List<Integer> fastTop(List<Segment> segments, double[] scores, int k) {
        List<Integer> out = new ArrayList<>();
        for (Segment s : segments) {
            if (scores[s.index()] > 0) {
                out.add(s.index());
            }
        }
        out.sort(Comparator.<Integer>comparingDouble(i -> -scores[i]).thenComparing(i -> i));
        return out.subList(0, Math.min(k, out.size()));
    }

    private static final class Acc {
        int n;
        double precision;
        double recall;
        long nanos;
        long calls;
        long candidates;

        void add(List<Integer> top, Set<Integer> truth, long elapsed, long valueCalls, int cands) {
            long hits = top.stream().filter(truth::contains).count();
            precision += top.isEmpty() ? 0 : hits / (double) top.size();
            recall += truth.isEmpty() ? 0 : hits / (double) truth.size();
            nanos += elapsed;
            calls += valueCalls;
            candidates += cands;
            n++;
        }

        Row row(int tokens, String tier) {
            int d = Math.max(1, n);
            return new Row(
                    tokens,
                    tier,
                    n,
                    precision / d,
                    recall / d,
                    nanos / 1e6 / d,
                    calls / (double) d,
                    candidates / (double) d);
        }
    }
}
