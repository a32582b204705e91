package io.engram.engine.memory.duo;

import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.memory.MemoryPolicy;
import java.util.ArrayList;
import java.util.List;

/**
 * DuoAttention (algorithms.md section 6): per KV head, retrieval heads see what the inner policy gives them (full
 * attention, or InfLLM/EM-LLM retrieval over the whole memory), streaming heads see only the first {@code sinkTokens}
 * tokens and the last {@code recentTokens} tokens before the step plus the step itself. Streaming heads use the inner
 * plan's positions (no re-indexing, as in DuoAttention); keys that fall before the inner plan's position frame sit at
 * its fixed position 0. When sinks and window cover the stream every head sees exactly what the inner policy gives.
 * Defaults: 64 sinks and 256 recent tokens (DuoAttention's deployment sizes).
 */
public final class DuoAttention extends io.engram.engine.memory.ForwardingMemoryPolicy {
    public static final int DEFAULT_SINK_TOKENS = 64;
    public static final int DEFAULT_RECENT_TOKENS = 256;

    private final HeadPattern pattern;
    private final int sinkTokens;
    private final int recentTokens;
    private final long[] streamingMask; // per layer: bit g set for a streaming KV head g

    private final boolean dropStreamingKv;

    public DuoAttention(HeadPattern pattern, MemoryPolicy retrieval, int sinkTokens, int recentTokens) {
        this(pattern, retrieval, sinkTokens, recentTokens, true);
    }

    /** @param dropStreamingKv whether streaming heads' rows behind their window are dropped (false: kept, for tests) */
    public DuoAttention(
            HeadPattern pattern, MemoryPolicy retrieval, int sinkTokens, int recentTokens, boolean dropStreamingKv) {
        super(retrieval);
        this.dropStreamingKv = dropStreamingKv;
        if (sinkTokens < 0 || recentTokens < 0) {
            throw new IllegalArgumentException("sink and recent sizes must be >= 0");
        }
        this.pattern = pattern;
        this.sinkTokens = sinkTokens;
        this.recentTokens = recentTokens;
        if (pattern.kvHeads() > Long.SIZE) {
            throw new IllegalArgumentException(
                    "DuoAttention supports at most 64 KV heads per layer, got " + pattern.kvHeads());
        }
        this.streamingMask = new long[pattern.layers()];
        for (int l = 0; l < pattern.layers(); l++) {
            for (int g = 0; g < pattern.kvHeads(); g++) {
                if (!pattern.isRetrieval(l, g)) {
                    streamingMask[l] |= 1L << g;
                }
            }
        }
    }

    public HeadPattern pattern() {
        return pattern;
    }

    @Override
    public AttentionPlan plan(KvCache cache, long firstSeq, int n, int kvHeads) {
        if (pattern.kvHeads() != kvHeads || pattern.layers() != cache.layers()) {
            throw new IllegalArgumentException("head pattern is %d layers x %d KV heads; the model has %d x %d"
                    .formatted(pattern.layers(), pattern.kvHeads(), cache.layers(), kvHeads));
        }
        return inner.plan(cache, firstSeq, n, kvHeads);
    }

    @Override
    public AttentionPlan planLayer(KvCache cache, int layer, AttentionPlan stepPlan, float[] queryMean) {
        AttentionPlan base = inner.planLayer(cache, layer, stepPlan, queryMean);
        int kvHeads = pattern.kvHeads();
        boolean anyStreaming = false;
        for (int g = 0; g < kvHeads; g++) {
            anyStreaming |= !pattern.isRetrieval(layer, g);
        }
        if (!anyStreaming) {
            return base;
        }
        int n = base.queryPositions().length;
        long firstSeq = cache.nextSeq() - n;
        List<KvSpan> streaming = streamingSpans(cache, layer, firstSeq, n, base);
        List<List<KvSpan>> perHead = new ArrayList<>(kvHeads);
        for (int g = 0; g < kvHeads; g++) {
            perHead.add(pattern.isRetrieval(layer, g) ? base.spans(g) : streaming);
        }
        return base.withSpans(perHead);
    }

    @Override
    public void committed(KvCache cache) {
        if (dropStreamingKv && !cache.isTransient()) {
            dropStreamingKv(cache);
        }
        inner.committed(cache);
    }

    /**
     * Drops the streaming heads' rows of every full block that no later step's streaming heads see: past the sinks and
     * wholly before the recent window of the next step. Newest first; blocks before the newest one already done were
     * done with it (restored blocks carry their masks).
     */
    private void dropStreamingKv(KvCache cache) {
        if (pattern.layers() != cache.layers()) {
            return; // plan() refuses the mismatch on the next step
        }
        long windowStart = cache.nextSeq() - recentTokens;
        List<KvBlock> blocks = cache.blocks();
        for (int i = blocks.size() - 1; i >= 0; i--) {
            KvBlock b = blocks.get(i);
            if (b.firstSeq() < sinkTokens) {
                break; // this block and those before it hold sinks
            }
            if (!b.isFull() || b.firstSeq() + b.length() > windowStart) {
                continue;
            }
            boolean done = true;
            for (int l = 0; l < streamingMask.length; l++) {
                done &= (b.droppedHeads(l) & streamingMask[l]) == streamingMask[l];
            }
            if (done) {
                break;
            }
            cache.dropHeads(b, streamingMask, pattern.kvHeads());
        }
    }

    private List<KvSpan> streamingSpans(KvCache cache, int layer, long firstSeq, int n, AttentionPlan base) {
        // the base plan's frame: the step's tokens sit at queryPositions; same offset for the window's keys
        long off = base.queryPositions()[0] - firstSeq;
        boolean stored = off == 0 && storedFrame(cache, firstSeq, n, base);
        long recentStart = Math.max(0, firstSeq - recentTokens);
        long sinkEnd = Math.min(sinkTokens, recentStart);
        List<KvSpan> out = new ArrayList<>();
        for (KvBlock b : cache.blocks()) {
            long lo = b.firstSeq();
            long hi = lo + b.length();
            boolean used = false;
            used |= add(out, b, lo, hi, 0, sinkEnd, off, stored);
            used |= add(out, b, lo, hi, recentStart, firstSeq + n, off, stored);
            if (used) {
                cache.ensureResident(b, layer);
            }
        }
        return List.copyOf(out);
    }

    /** Whether the base plan puts the step's tokens at the positions they were written at. */
    private static boolean storedFrame(KvCache cache, long firstSeq, int n, AttentionPlan base) {
        for (KvBlock b : cache.blocks()) {
            for (long s = Math.max(firstSeq, b.firstSeq());
                    s < Math.min(firstSeq + n, b.firstSeq() + b.length());
                    s++) {
                if (b.position((int) (s - b.firstSeq())) != base.queryPositions()[(int) (s - firstSeq)]) {
                    return false;
                }
            }
        }
        return true;
    }

    private static boolean add(
            List<KvSpan> out, KvBlock b, long lo, long hi, long from, long to, long off, boolean stored) {
        long a = Math.max(lo, from);
        long z = Math.min(hi, to);
        if (a >= z) {
            return false;
        }
        if (stored) {
            out.add(new KvSpan(b, (int) (a - lo), (int) (z - lo), KvSpan.Positions.STORED, 0));
            return true;
        }
        long inFrame = Math.max(a, -off); // keys at or after this index have a position >= 0 in the frame
        if (a < Math.min(z, inFrame)) {
            out.add(new KvSpan(b, (int) (a - lo), (int) (Math.min(z, inFrame) - lo), KvSpan.Positions.FIXED, 0));
        }
        if (inFrame < z) {
            out.add(new KvSpan(
                    b, (int) (inFrame - lo), (int) (z - lo), KvSpan.Positions.CONTIGUOUS, (int) (inFrame + off)));
        }
        return true;
    }
}
