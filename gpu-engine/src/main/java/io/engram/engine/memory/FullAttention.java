package io.engram.engine.memory;

import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.kv.KvSpan;
import java.util.ArrayList;
import java.util.List;

/** Exact attention: every attached token, at the position it was written at. The reference for every other policy. */
public final class FullAttention implements MemoryPolicy {

    @Override
    public AttentionPlan plan(KvCache cache, long firstSeq, int n, int kvHeads) {
        List<KvSpan> spans = new ArrayList<>(cache.blocks().size());
        int[] qpos = new int[n];
        for (KvBlock b : cache.blocks()) {
            spans.add(KvSpan.stored(b));
            long lo = Math.max(firstSeq, b.firstSeq());
            long hi = Math.min(firstSeq + n, b.firstSeq() + b.length());
            for (long s = lo; s < hi; s++) {
                qpos[(int) (s - firstSeq)] = b.position((int) (s - b.firstSeq()));
            }
        }
        return AttentionPlan.uniform(kvHeads, spans, qpos);
    }
}
