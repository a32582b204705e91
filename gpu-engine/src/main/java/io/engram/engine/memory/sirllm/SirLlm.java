package io.engram.engine.memory.sirllm;

import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.memory.MemoryPolicy;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * SirLLM (algorithms.md section 4): keeps the first {@code sinkTokens} tokens, the {@code scoredTokens} tokens with
 * the highest token entropy (self-information {@code -log p}), and the most recent tokens, within a cache of {@code
 * sinkTokens + recentTokens + scoredTokens} tokens. Eviction happens once per turn, before it ({@link #beginTurn}: one
 * content event, however many prefill steps it takes), making room for the whole turn; after each eviction every kept
 * score is multiplied by {@code decay}, so older tokens lose priority turn by turn. Transient steps (a question, its
 * answer, a summary prompt: {@link KvCache#isTransient}) never evict or decay: they attend to what is kept and are
 * truncated away. Steps outside any turn (tools driving the policy step by step) evict when they would overflow. Kept keys are re-indexed to positions {@code 0..kept-1} (StreamingLLM
 * position shift). Evicted tokens never come back; blocks with no kept token leave engine memory for the cache's unit
 * store. While nothing has been evicted the plan is exact full attention.
 */
public final class SirLlm implements MemoryPolicy {
    private final int sinkTokens;
    private final int recentTokens;
    private final int scoredTokens;
    private final float decay;

    public SirLlm(int sinkTokens, int recentTokens, int scoredTokens, double decay) {
        if (sinkTokens < 0 || recentTokens < 0 || scoredTokens < 0 || sinkTokens + recentTokens + scoredTokens < 1) {
            throw new IllegalArgumentException("SirLLM sizes must be >= 0 with a positive total, got %d, %d, %d"
                    .formatted(sinkTokens, recentTokens, scoredTokens));
        }
        if (!(decay > 0 && decay <= 1)) {
            throw new IllegalArgumentException("SirLLM decay must be in (0, 1], got " + decay);
        }
        this.sinkTokens = sinkTokens;
        this.recentTokens = recentTokens;
        this.scoredTokens = scoredTokens;
        this.decay = (float) decay;
    }

    public int cacheTokens() {
        return sinkTokens + recentTokens + scoredTokens;
    }

    private static final class State implements io.engram.engine.kv.PolicyState {
        long[] kept = new long[0]; // ascending sequence indices
        float[] score = new float[0];
        boolean evicted;
        boolean started;
        boolean inTurn;
    }

    private State state(KvCache cache) {
        return cache.policyState(this, State::new);
    }

    /** Sequence indices the session keeps, ascending (for tests and reports). */
    public long[] kept(KvCache cache) {
        State st = state(cache);
        return st.kept.clone();
    }

    @Override
    public io.engram.engine.memory.PolicySnapshot snapshot(KvCache cache, int fromUnit) {
        State st = state(cache);
        int valid = 0;
        while (valid < st.kept.length && st.kept[valid] < cache.nextSeq()) {
            valid++; // tokens a truncate removed (a question, an answer) are not part of the session
        }
        return new io.engram.engine.memory.PolicySnapshot(
                "sirllm",
                0,
                0,
                0,
                List.of(),
                new long[0],
                Arrays.copyOf(st.kept, valid),
                Arrays.copyOf(st.score, valid),
                st.evicted,
                List.of());
    }

    @Override
    public void restore(KvCache cache, io.engram.engine.memory.PolicySnapshot s) {
        if (!"sirllm".equals(s.policy())) {
            return;
        }
        State st = state(cache);
        st.kept = s.retained().clone();
        st.score = s.retainedScores().clone();
        st.evicted = s.evicted();
        st.started = true;
        if (st.evicted) {
            offloadUnused(st, cache, cache.nextSeq());
        }
    }

    @Override
    public boolean needsTokenScores() {
        return true;
    }

    @Override
    public void beginTurn(KvCache cache, long firstSeq, int tokens) {
        State st = state(cache);
        prune(st, cache, firstSeq);
        if (st.kept.length + tokens > cacheTokens()) {
            // the paper's rule: room for the whole turn, the sinks always kept
            evict(st, Math.max(cacheTokens() - tokens, Math.min(sinkTokens, st.kept.length)));
        }
        st.inTurn = true;
    }

    @Override
    public void endTurn(KvCache cache) {
        state(cache).inTurn = false;
    }

    @Override
    public AttentionPlan plan(KvCache cache, long firstSeq, int n, int kvHeads) {
        State st = state(cache);
        prune(st, cache, firstSeq);
        if (!st.inTurn && !cache.isTransient() && st.kept.length + n > cacheTokens()) {
            evict(st, Math.max(0, cacheTokens() - n));
        }
        return plan(st, cache, firstSeq, n, kvHeads);
    }

    /** Drops kept tokens a truncate removed or retention dropped; adopts a restored session's tokens first. */
    private static void prune(State st, KvCache cache, long firstSeq) {
        if (!st.started) {
            st.started = true;
            adoptRestored(st, cache, firstSeq);
        }
        int valid = 0;
        while (valid < st.kept.length && st.kept[valid] < firstSeq) {
            valid++;
        }
        if (valid < st.kept.length) { // tokens a truncate removed
            st.kept = Arrays.copyOf(st.kept, valid);
            st.score = Arrays.copyOf(st.score, valid);
        }
        int w = 0;
        for (int i = 0; i < st.kept.length; i++) {
            if (cache.blockAt(st.kept[i]) != null) { // tokens of blocks the session's retention dropped are gone
                st.kept[w] = st.kept[i];
                st.score[w++] = st.score[i];
            }
        }
        if (w < st.kept.length) {
            st.kept = Arrays.copyOf(st.kept, w);
            st.score = Arrays.copyOf(st.score, w);
            st.evicted = true;
        }
    }

    private static AttentionPlan plan(State st, KvCache cache, long firstSeq, int n, int kvHeads) {
        List<KvSpan> spans = new ArrayList<>();
        int[] qpos = new int[n];
        if (!st.evicted) {
            for (KvBlock b : cache.blocks()) {
                spans.add(KvSpan.stored(b));
                for (long s = Math.max(firstSeq, b.firstSeq());
                        s < Math.min(firstSeq + n, b.firstSeq() + b.length());
                        s++) {
                    qpos[(int) (s - firstSeq)] = b.position((int) (s - b.firstSeq()));
                }
            }
            return AttentionPlan.uniform(kvHeads, spans, qpos);
        }
        // runs of consecutive kept tokens inside one block, at re-indexed positions; then the step itself
        List<KvBlock> blocks = cache.blocks();
        int bi = 0;
        int i = 0;
        while (i < st.kept.length) {
            long s = st.kept[i];
            while (blocks.get(bi).firstSeq() + blocks.get(bi).capacity() <= s) {
                bi++;
            }
            KvBlock b = blocks.get(bi);
            int j = i;
            while (j + 1 < st.kept.length
                    && st.kept[j + 1] == st.kept[j] + 1
                    && st.kept[j + 1] < b.firstSeq() + b.length()) {
                j++;
            }
            spans.add(new KvSpan(
                    b,
                    (int) (s - b.firstSeq()),
                    (int) (st.kept[j] - b.firstSeq()) + 1,
                    KvSpan.Positions.CONTIGUOUS,
                    i));
            i = j + 1;
        }
        int base = st.kept.length;
        for (KvBlock b : blocks) {
            long lo = Math.max(firstSeq, b.firstSeq());
            long hi = Math.min(firstSeq + n, b.firstSeq() + b.length());
            if (lo < hi) {
                spans.add(new KvSpan(
                        b, (int) (lo - b.firstSeq()), (int) (hi - b.firstSeq()), KvSpan.Positions.CONTIGUOUS, (int)
                                (base + lo - firstSeq)));
            }
        }
        for (int q = 0; q < n; q++) {
            qpos[q] = base + q;
        }
        return AttentionPlan.uniform(kvHeads, spans, qpos);
    }

    /**
     * A session restored from storage arrives with tokens but without this policy's record of them: every attached
     * token before the step counts as kept (score 0 where none was stored), and the next overflow evicts as usual.
     */
    private static void adoptRestored(State st, KvCache cache, long firstSeq) {
        if (firstSeq == 0) {
            return;
        }
        long[] kept = new long[(int) Math.min(firstSeq, cache.attachedTokens())];
        float[] score = new float[kept.length];
        int w = 0;
        for (KvBlock b : cache.blocks()) {
            for (int s = 0; s < b.length() && b.seq(s) < firstSeq && w < kept.length; s++) {
                kept[w] = b.seq(s);
                float v = b.score(s);
                score[w++] = Float.isNaN(v) ? 0f : v;
            }
        }
        st.kept = java.util.Arrays.copyOf(kept, w);
        st.score = java.util.Arrays.copyOf(score, w);
        st.evicted = w != firstSeq; // gaps: positions must be re-indexed
    }

    /** Keeps sinks, the top scored tokens, then the most recent ones, {@code room} in all; decays the kept scores. */
    private void evict(State st, int room) {
        int len = st.kept.length;
        boolean[] keep = new boolean[len];
        int count = 0;
        for (int i = 0; i < len && st.kept[i] < sinkTokens && count < room; i++) {
            keep[i] = true;
            count++;
        }
        int scored = Math.max(0, Math.min(scoredTokens, room - count));
        Integer[] order = new Integer[len];
        for (int i = 0; i < len; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> {
            int c = Float.compare(st.score[b], st.score[a]);
            return c != 0 ? c : Integer.compare(b, a); // ties: the more recent token
        });
        for (int k = 0, taken = 0; k < len && taken < scored; k++) {
            if (!keep[order[k]]) {
                keep[order[k]] = true;
                taken++;
                count++;
            }
        }
        for (int i = len - 1; i >= 0 && count < room; i--) {
            if (!keep[i]) {
                keep[i] = true;
                count++;
            }
        }
        long[] kept = new long[count];
        float[] score = new float[count];
        int w = 0;
        for (int i = 0; i < len; i++) {
            if (keep[i]) {
                kept[w] = st.kept[i];
                score[w] = st.score[i] * decay;
                w++;
            }
        }
        st.evicted |= count < len;
        st.kept = kept;
        st.score = score;
    }

    @Override
    public void afterStep(KvCache cache, long firstSeq, int n) {
        State st = state(cache);
        long[] kept = Arrays.copyOf(st.kept, st.kept.length + n);
        float[] score = Arrays.copyOf(st.score, st.score.length + n);
        float max = Float.NEGATIVE_INFINITY;
        for (KvBlock b : cache.blocks()) {
            long lo = Math.max(firstSeq, b.firstSeq());
            long hi = Math.min(firstSeq + n, b.firstSeq() + b.length());
            for (long s = lo; s < hi; s++) {
                int at = st.kept.length + (int) (s - firstSeq);
                kept[at] = s;
                score[at] = b.score((int) (s - b.firstSeq()));
                if (!Float.isNaN(score[at])) {
                    max = Math.max(max, score[at]);
                }
            }
        }
        // a token with no prediction (the first of a stream or after a truncate) gets the step's maximum
        for (int at = st.kept.length; at < kept.length; at++) {
            if (Float.isNaN(score[at])) {
                score[at] = max == Float.NEGATIVE_INFINITY ? 0f : max;
            }
        }
        st.kept = kept;
        st.score = score;
        if (st.evicted) {
            offloadUnused(st, cache, firstSeq + n);
        }
    }

    /** Blocks holding no kept token leave engine memory (the unit store keeps them for the session's record). */
    private static void offloadUnused(State st, KvCache cache, long end) {
        int i = 0;
        for (KvBlock b : cache.blocks()) {
            long bEnd = b.firstSeq() + b.capacity();
            if (bEnd > end || b.residentLayers() == 0) {
                continue;
            }
            while (i < st.kept.length && st.kept[i] < b.firstSeq()) {
                i++;
            }
            boolean used = i < st.kept.length && st.kept[i] < bEnd;
            if (!used) {
                for (int l = 0; l < b.layers(); l++) {
                    cache.offload(b, l);
                }
            }
        }
    }
}
