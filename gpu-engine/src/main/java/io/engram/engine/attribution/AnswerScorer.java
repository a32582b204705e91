package io.engram.engine.attribution;

import io.engram.engine.kv.KvCache;
import io.engram.engine.kv.TokenScores;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Transformer;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;

/**
 * TracLLM's value function (algorithms.md section 7.1) over a session's memory: {@code v(S)} is the teacher-forced sum
 * of the natural log-probabilities of the answer's tokens after the context made of the preamble and the candidate
 * segments in {@code S} (in their original order), then the question. Runs on a scratch {@link KvCache} of its own
 * with the session's memory policy, so the session's memory is never touched.
 *
 * <p>Cost: one forward over the context and the question and answer per call. Consecutive calls share work: the
 * scratch cache is truncated back to the longest common prefix of the previous context and the new one (keys of a
 * token depend only on the tokens before it), which is exact for full attention; other policies keep per-session state
 * that a truncate into the middle of the stream would leave stale, so they start from an empty cache each time.
 *
 * <p>Not thread-safe: one instance per attribution, used by one thread.
 */
public final class AnswerScorer {
    private final Transformer model;
    private final MemoryPolicy policy;
    private final int[] preamble;
    private final List<int[]> candidates;
    private final int[] question;
    private final int[] answer;
    private final boolean reusePrefix;
    private KvCache scratch;
    private int[] cached = new int[0]; // context tokens the scratch cache holds (before its question and answer)
    private long evaluations;
    private long tokensRun;

    /**
     * @param preamble tokens every context starts with (BOS)
     * @param candidates token ids of each candidate segment, in memory order
     * @param question the question's tokens as the session engine prompts it (after the memory)
     * @param answer the answer's tokens; at least one
     */
    public AnswerScorer(
            Transformer model,
            MemoryPolicy policy,
            int[] preamble,
            List<int[]> candidates,
            int[] question,
            int[] answer) {
        if (answer.length == 0) {
            throw new IllegalArgumentException("an empty answer has no log-probability to attribute");
        }
        if (question.length == 0) {
            throw new IllegalArgumentException(
                    "attribution needs the question's tokens: their last row predicts the answer");
        }
        this.model = model;
        this.policy = policy;
        this.preamble = preamble.clone();
        this.candidates = List.copyOf(candidates);
        this.question = question.clone();
        this.answer = answer.clone();
        this.reusePrefix = policy instanceof FullAttention;
    }

    public int candidateCount() {
        return candidates.size();
    }

    /** Forwards run so far (for reports). */
    public long evaluations() {
        return evaluations;
    }

    /** Tokens run through the model so far, prefix reuse taken into account (for reports). */
    public long tokensRun() {
        return tokensRun;
    }

    /** The context tokens of subset {@code kept}: the preamble, then the kept candidates in order. */
    int[] context(BitSet kept) {
        int n = preamble.length;
        for (int i = kept.nextSetBit(0); i >= 0; i = kept.nextSetBit(i + 1)) {
            n += candidates.get(i).length;
        }
        int[] out = Arrays.copyOf(preamble, n);
        int at = preamble.length;
        for (int i = kept.nextSetBit(0); i >= 0; i = kept.nextSetBit(i + 1)) {
            int[] c = candidates.get(i);
            System.arraycopy(c, 0, out, at, c.length);
            at += c.length;
        }
        return out;
    }

    /** {@code v(kept)}: sum over the answer's tokens of {@code log p(token | context(kept), question, earlier answer tokens)}. */
    public double value(BitSet kept) {
        if (kept.length() > candidates.size()) {
            throw new IllegalArgumentException(
                    "subset names candidate " + (kept.length() - 1) + " of " + candidates.size());
        }
        int[] ctx = context(kept);
        int common = 0;
        if (scratch == null || !reusePrefix) {
            scratch = model.newCache();
            cached = new int[0];
        } else {
            int max = Math.min(cached.length, ctx.length);
            while (common < max && cached[common] == ctx[common]) {
                common++;
            }
            scratch.truncate(common);
        }
        if (common < ctx.length) {
            model.forward(
                    scratch,
                    Arrays.copyOfRange(ctx, common, ctx.length),
                    null,
                    policy,
                    Transformer.Logits.NONE,
                    (s, l) -> {});
        }
        cached = ctx;
        int[] tail = new int[question.length + answer.length];
        System.arraycopy(question, 0, tail, 0, question.length);
        System.arraycopy(answer, 0, tail, question.length, answer.length);
        long firstPredicting = ctx.length + question.length - 1L; // the row whose logits predict answer token 0
        double[] sum = {0};
        model.forward(scratch, tail, null, policy, Transformer.Logits.ALL, (seq, logits) -> {
            long k = seq - firstPredicting;
            if (k >= 0 && k < answer.length) {
                sum[0] -= TokenScores.surprise(logits, answer[(int) k]);
            }
        });
        scratch.truncate(cached.length);
        evaluations++;
        tokensRun += ctx.length - common + tail.length;
        return sum[0];
    }
}
