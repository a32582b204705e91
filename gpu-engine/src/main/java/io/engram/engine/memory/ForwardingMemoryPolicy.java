package io.engram.engine.memory;

import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;

/**
 * A memory policy that hands every call to another one; subclasses override what they change (an observer on the
 * plans, a head split on top of a retrieval policy, a recorder in tests).
 */
public abstract class ForwardingMemoryPolicy implements MemoryPolicy {
    protected final MemoryPolicy inner;

    /** The policy this one wraps. */
    public MemoryPolicy inner() {
        return inner;
    }

    protected ForwardingMemoryPolicy(MemoryPolicy inner) {
        if (inner == null) {
            throw new IllegalArgumentException("a policy to forward to is required");
        }
        this.inner = inner;
    }

    @Override
    public AttentionPlan plan(KvCache cache, long firstSeq, int n, int kvHeads) {
        return inner.plan(cache, firstSeq, n, kvHeads);
    }

    @Override
    public boolean needsQueries(KvCache cache, long firstSeq, int n) {
        return inner.needsQueries(cache, firstSeq, n);
    }

    @Override
    public AttentionPlan planLayer(KvCache cache, int layer, AttentionPlan stepPlan, float[] queryMean) {
        return inner.planLayer(cache, layer, stepPlan, queryMean);
    }

    @Override
    public boolean needsTokenScores() {
        return inner.needsTokenScores();
    }

    @Override
    public boolean offloadsMemory() {
        return inner.offloadsMemory();
    }

    @Override
    public void afterStep(KvCache cache, long firstSeq, int n) {
        inner.afterStep(cache, firstSeq, n);
    }

    @Override
    public void beginTurn(KvCache cache, long firstSeq, int tokens) {
        inner.beginTurn(cache, firstSeq, tokens);
    }

    @Override
    public void committed(KvCache cache) {
        inner.committed(cache);
    }

    @Override
    public void endTurn(KvCache cache) {
        inner.endTurn(cache);
    }

    @Override
    public PolicySnapshot snapshot(KvCache cache, int fromUnit) {
        return inner.snapshot(cache, fromUnit);
    }

    @Override
    public void restore(KvCache cache, PolicySnapshot snapshot) {
        inner.restore(cache, snapshot);
    }

    @Override
    public long lastEpisodeBoundary(KvCache cache) {
        return inner.lastEpisodeBoundary(cache);
    }
}
