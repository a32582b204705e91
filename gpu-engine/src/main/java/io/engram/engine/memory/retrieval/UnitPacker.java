package io.engram.engine.memory.retrieval;

import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.retrieval.RetrievalMemory.Unit;
import java.util.Arrays;
import java.util.List;

/**
 * Packs tokens that left the local window into units: InfLLM's full blocks, or EM-LLM's events between the boundaries
 * {@link EventBoundaries} found (merged when shorter than the minimum, cut at the maximum), never across a gap that
 * retention left. A unit's representative keys are, per layer and KV head, the mean raw key of the {@code reprTokens}
 * tokens that received the most attention while they were in the window.
 */
final class UnitPacker {

    private final RetrievalSettings cfg;
    private final int layers;
    private final int kvHeads;
    private final int headDim;

    UnitPacker(RetrievalSettings cfg, int layers, int kvHeads, int headDim) {
        this.cfg = cfg;
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
    }

    /**
     * Skips a gap that retention left in the session's memory at {@code packedEnd}: packing resumes at the next
     * attached token. Returns false when there is none before {@code limit}.
     */
    private static boolean skipGap(RetrievalState st, KvCache cache, long limit) {
        if (cache.blockAt(st.packedEnd) != null) {
            return true;
        }
        for (KvBlock b : cache.blocks()) {
            if (b.firstSeq() > st.packedEnd && b.length() > 0) {
                if (b.firstSeq() >= limit) {
                    return false;
                }
                st.packedEnd = b.firstSeq();
                return true;
            }
        }
        return false;
    }

    /** End of the attached run starting at {@code a}, at most {@code z}: a unit never spans a gap. */
    static long attachedUntil(KvCache cache, long a, long z) {
        long s = a;
        while (s < z) {
            KvBlock b = cache.blockAt(s);
            if (b == null) {
                return s;
            }
            s = b.firstSeq() + b.length();
        }
        return z;
    }

    void packBlocks(RetrievalState st, KvCache cache, long limit) {
        while (true) {
            if (!skipGap(st, cache, limit)) {
                return;
            }
            KvBlock b = cache.blockAt(st.packedEnd);
            if (b == null || !b.isFull()) {
                return;
            }
            long bEnd = b.firstSeq() + b.capacity();
            if (bEnd > limit) {
                return;
            }
            addUnit(st, cache, st.packedEnd, bEnd);
        }
    }

    void packEvents(RetrievalState st, KvCache cache, long limit, RetrievalSettings.Surprise sp) {
        while (st.packedEnd < limit) {
            if (!skipGap(st, cache, limit)) {
                break;
            }
            long a = st.packedEnd;
            long run = attachedUntil(cache, a, limit);
            if (run < limit) {
                // memory before a gap: what is left of it becomes a unit (or merges away when too short)
                if (run - a >= sp.minTokens()) {
                    addUnit(st, cache, a, Math.min(run, a + sp.maxTokens()));
                } else {
                    st.packedEnd = run;
                }
                continue;
            }
            Long b = st.boundaries.higher(a);
            if (b != null && b <= limit) {
                long len = b - a;
                if (len < sp.minTokens()) {
                    st.boundaries.remove(b); // too short: merges into the next event
                } else if (len > sp.maxTokens()) {
                    addUnit(st, cache, a, a + sp.maxTokens());
                } else {
                    addUnit(st, cache, a, b);
                    st.boundaries.remove(b);
                }
            } else if (limit - a >= sp.maxTokens()) {
                addUnit(st, cache, a, a + sp.maxTokens()); // no boundary in a long span: cut it uniformly
            } else {
                return;
            }
        }
        st.boundaries.headSet(st.packedEnd, true).clear();
    }

    /** Packs {@code [a, z)} into a unit with its representative keys (tokens most attended while in the window). */
    private void addUnit(RetrievalState st, KvCache cache, long a, long z) {
        float[][] repr = new float[layers][kvHeads * headDim];
        List<KvBlock> blocks = RetrievalMemory.blocksOf(cache, a, z);
        float[] key = new float[kvHeads * headDim];
        for (int l = 0; l < layers; l++) {
            for (int g = 0; g < kvHeads; g++) {
                // the reprTokens tokens with the most mass (earlier first on ties)
                long[] bestSeq = new long[cfg.reprTokens()];
                float[] bestMass = new float[cfg.reprTokens()];
                Arrays.fill(bestMass, Float.NEGATIVE_INFINITY);
                for (KvBlock b : blocks) {
                    float[] m = st.mass.get(b);
                    int base = (l * kvHeads + g) * b.capacity();
                    long lo = Math.max(a, b.firstSeq());
                    long hi = Math.min(z, b.firstSeq() + b.length());
                    for (long t = lo; t < hi; t++) {
                        float v = m == null ? 0f : m[base + (int) (t - b.firstSeq())];
                        int pos = cfg.reprTokens();
                        while (pos > 0 && v > bestMass[pos - 1]) {
                            pos--;
                        }
                        if (pos < cfg.reprTokens()) {
                            System.arraycopy(bestMass, pos, bestMass, pos + 1, cfg.reprTokens() - pos - 1);
                            System.arraycopy(bestSeq, pos, bestSeq, pos + 1, cfg.reprTokens() - pos - 1);
                            bestMass[pos] = v;
                            bestSeq[pos] = t;
                        }
                    }
                }
                float[][] keys = new float[cfg.reprTokens()][];
                int count = 0;
                for (int i = 0; i < cfg.reprTokens(); i++) {
                    if (bestMass[i] == Float.NEGATIVE_INFINITY) {
                        continue;
                    }
                    KvBlock b = cache.blockAt(bestSeq[i]);
                    cache.readKey(b, l, (int) (bestSeq[i] - b.firstSeq()), key);
                    keys[count++] = Arrays.copyOfRange(key, g * headDim, (g + 1) * headDim);
                }
                // summed in the keys' own order, not the mass order: units whose representative tokens are the same
                // keys in another mass order (frequent in layer 0, where a key depends on its token alone) then tie
                // exactly and the earlier wins, instead of differing in the last bits and ranking by rounding noise
                Arrays.sort(keys, 0, count, Arrays::compare);
                for (int i = 0; i < count; i++) {
                    for (int j = 0; j < headDim; j++) {
                        repr[l][g * headDim + j] += keys[i][j];
                    }
                }
                for (int j = 0; j < headDim && count > 0; j++) {
                    repr[l][g * headDim + j] /= count;
                }
            }
        }
        st.units.add(new Unit(a, z, repr));
        st.index.add(repr);
        st.unitTokens += z - a;
        st.packedEnd = z;
    }
}
