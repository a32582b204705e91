package io.engram.engine.attribution;

import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Transformer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

/**
 * The precise tier in one call: TracLLM's informed search ({@link TracSearch}) over pre-filtered candidate segments
 * ({@link Candidates}), valued by re-scoring the answer ({@link AnswerScorer}). The stream job runs the same pieces with
 * a budget per call ({@link #attempt}); benches and tests run it to the end ({@link #run}).
 */
public final class PreciseTier {
    private PreciseTier() {}

    /** A candidate and its score, best first in {@link Outcome#top}. */
    public record Cited(Segment segment, double score) {}

    /**
     * @param top the best segments (at most the search's top-k), best first; null while unfinished
     * @param added values computed by this attempt, to keep for the next one
     */
    public record Outcome(List<Cited> top, Map<String, Double> added, long evaluations) {
        public boolean finished() {
            return top != null;
        }
    }

    /** Runs the search to the end. */
    public static Outcome run(
            Transformer model,
            MemoryPolicy policy,
            int[] preamble,
            List<Segment> candidates,
            int[] question,
            int[] answer,
            TracSearch.Settings settings) {
        return attempt(model, policy, preamble, candidates, question, answer, settings, Map.of(), () -> true);
    }

    /**
     * Runs the search over the values {@code known} from earlier attempts, computing missing values while
     * {@code mayCompute} says so; the outcome is unfinished when it stopped for the budget.
     */
    public static Outcome attempt(
            Transformer model,
            MemoryPolicy policy,
            int[] preamble,
            List<Segment> candidates,
            int[] question,
            int[] answer,
            TracSearch.Settings settings,
            Map<String, Double> known,
            BooleanSupplier mayCompute) {
        List<int[]> tokens = new ArrayList<>(candidates.size());
        for (Segment s : candidates) {
            tokens.add(s.tokens());
        }
        AnswerScorer scorer = new AnswerScorer(model, policy, preamble, tokens, question, answer);
        Memo memo = new Memo(scorer::value, known, mayCompute);
        List<TracSearch.Scored> top = memo.tryRun(new TracSearch(settings), candidates.size());
        if (top == null) {
            return new Outcome(null, memo.added(), scorer.evaluations());
        }
        List<Cited> cited = new ArrayList<>(top.size());
        for (TracSearch.Scored s : top) {
            cited.add(new Cited(candidates.get(s.candidate()), s.score()));
        }
        return new Outcome(List.copyOf(cited), memo.added(), scorer.evaluations());
    }
}
