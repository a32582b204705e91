package io.engram.engine.memory.streaming;

import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.memory.MemoryPolicy;
import java.util.ArrayList;
import java.util.List;

/**
 * StreamingLLM (attention sinks): every head attends to the first {@code sinkTokens} tokens of the stream and to a
 * window of the most recent {@code recentTokens} tokens before the step, plus the step's own tokens; positions are
 * re-indexed inside that cache (sinks at 0.., the window right after them), so the model never sees a position beyond
 * {@code sinkTokens + recentTokens + step}. Defaults: 4 sinks (algorithms.md section 1.3). When the budget covers the
 * whole stream the plan is exactly full attention (same keys, same positions). Blocks out of reach of sinks and window
 * leave engine memory (the cache's unit store keeps them), so engine memory is bounded by the budget.
 */
public final class StreamingLlm implements MemoryPolicy {
    public static final int DEFAULT_SINK_TOKENS = 4;

    private final int sinkTokens;
    private final int recentTokens;

    /** Tokens of the recent window (before the step). */
    public int recentTokens() {
        return recentTokens;
    }

    public StreamingLlm(int sinkTokens, int recentTokens) {
        if (sinkTokens < 0 || recentTokens < 0) {
            throw new IllegalArgumentException(
                    "sink and recent token counts must be >= 0, got %d and %d".formatted(sinkTokens, recentTokens));
        }
        this.sinkTokens = sinkTokens;
        this.recentTokens = recentTokens;
    }

    @Override
    public boolean offloadsMemory() {
        return true;
    }

    @Override
    public AttentionPlan plan(KvCache cache, long firstSeq, int n, int kvHeads) {
        // window: [windowStart, firstSeq + n); sinks: [0, min(sinkTokens, windowStart))
        long windowStart = Math.max(0, firstSeq - recentTokens);
        long sinkEnd = Math.min(sinkTokens, windowStart);
        if (windowStart <= sinkTokens) {
            windowStart = sinkEnd; // sinks and window meet: one contiguous run from 0
        }
        List<KvSpan> spans = new ArrayList<>();
        for (KvBlock b : cache.blocks()) {
            long lo = b.firstSeq();
            long hi = b.firstSeq() + b.length();
            // sink part of this block, positions 0..
            long sLo = Math.max(lo, 0);
            long sHi = Math.min(hi, sinkEnd);
            if (sLo < sHi) {
                spans.add(new KvSpan(b, (int) (sLo - lo), (int) (sHi - lo), KvSpan.Positions.CONTIGUOUS, (int) sLo));
            }
            long wLo = Math.max(lo, windowStart);
            long wHi = Math.min(hi, firstSeq + n);
            if (wLo < wHi) {
                spans.add(new KvSpan(b, (int) (wLo - lo), (int) (wHi - lo), KvSpan.Positions.CONTIGUOUS, (int)
                        (sinkEnd + (wLo - windowStart))));
            }
        }
        int[] qpos = new int[n];
        for (int i = 0; i < n; i++) {
            qpos[i] = Math.toIntExact(sinkEnd + (firstSeq + i - windowStart));
        }
        for (KvSpan s : spans) {
            for (int l = 0; l < s.block().layers(); l++) {
                cache.ensureResident(s.block(), l); // after a truncate the window may reach back into offloaded blocks
            }
        }
        return AttentionPlan.uniform(kvHeads, spans, qpos);
    }

    /** Blocks that neither hold a sink nor can reach the next step's window leave engine memory for the unit store. */
    @Override
    public void afterStep(KvCache cache, long firstSeq, int n) {
        long nextWindow = Math.max(0, firstSeq + n - recentTokens);
        for (KvBlock b : cache.blocks()) {
            if (b.firstSeq() >= sinkTokens && b.firstSeq() + b.capacity() <= nextWindow && b.residentLayers() > 0) {
                for (int l = 0; l < b.layers(); l++) {
                    cache.offload(b, l);
                }
            }
        }
    }
}
