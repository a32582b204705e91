package io.engram.engine.model;

import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;
import java.util.ArrayList;
import java.util.List;

/**
 * The bookkeeping of one forward step over several sequences: their tokens stacked into rows (sequence {@code s} owns
 * rows {@code [start(s), start(s + 1))}), each token's place in its sequence's cache, and what each memory policy
 * planned for the step. Making one appends the step's tokens to every cache (keys and values are written per layer).
 */
final class StepRows {
    private final int[] rowStart;
    /** The step's tokens, all sequences stacked. */
    final int[] tokens;
    /** Per sequence, where its tokens went in its cache. */
    final List<List<KvCache.Placement>> placed;
    /** Per sequence, its policy's plan for the step (per layer, the policy may refine it). */
    final AttentionPlan[] plans;
    /** Per sequence, whether its policy needs the step's mean query per layer to plan. */
    final boolean[] wantsQueries;
    /** Per sequence, the sequence index of each of its tokens. */
    final long[][] seq;

    private StepRows(
            int[] rowStart,
            int[] tokens,
            List<List<KvCache.Placement>> placed,
            AttentionPlan[] plans,
            boolean[] wantsQueries,
            long[][] seq) {
        this.rowStart = rowStart;
        this.tokens = tokens;
        this.placed = placed;
        this.plans = plans;
        this.wantsQueries = wantsQueries;
        this.seq = seq;
    }

    /** Appends each sequence's tokens to its cache and asks its policy for the step's plan. */
    static StepRows place(List<Transformer.Sequence> batch, int kvHeads) {
        int seqs = batch.size();
        int[] rowStart = new int[seqs + 1];
        for (int s = 0; s < seqs; s++) {
            rowStart[s + 1] = rowStart[s] + batch.get(s).tokens().length;
        }
        int[] all = new int[rowStart[seqs]];
        List<List<KvCache.Placement>> placed = new ArrayList<>(seqs);
        AttentionPlan[] plans = new AttentionPlan[seqs];
        boolean[] wantsQ = new boolean[seqs];
        long[][] seq = new long[seqs][];
        for (int s = 0; s < seqs; s++) {
            Transformer.Sequence sq = batch.get(s);
            int len = sq.tokens().length;
            System.arraycopy(sq.tokens(), 0, all, rowStart[s], len);
            long firstSeq = sq.cache().nextSeq();
            int[] positions = new int[len];
            seq[s] = new long[len];
            for (int i = 0; i < len; i++) {
                seq[s][i] = firstSeq + i;
                positions[i] = Math.toIntExact(firstSeq + i);
            }
            placed.add(sq.cache().append(sq.tokens(), positions, sq.sources()));
            plans[s] = sq.policy().plan(sq.cache(), firstSeq, len, kvHeads);
            wantsQ[s] = sq.policy().needsQueries(sq.cache(), firstSeq, len);
        }
        return new StepRows(rowStart, all, placed, plans, wantsQ, seq);
    }

    int sequences() {
        return plans.length;
    }

    /** Rows of the step, all sequences together. */
    int rows() {
        return rowStart[rowStart.length - 1];
    }

    /** First row of sequence {@code s}. */
    int start(int s) {
        return rowStart[s];
    }

    /** Rows (tokens) of sequence {@code s}. */
    int length(int s) {
        return rowStart[s + 1] - rowStart[s];
    }

    int longest() {
        int m = 0;
        for (int s = 0; s < sequences(); s++) {
            m = Math.max(m, length(s));
        }
        return m;
    }
}
