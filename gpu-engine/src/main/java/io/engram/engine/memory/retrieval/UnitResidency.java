package io.engram.engine.memory.retrieval;

import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.retrieval.RetrievalMemory.Unit;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Set;

/**
 * Which storage blocks of retrieved units stay in engine memory, per layer: the blocks a step retrieves are made
 * resident, and a least-recently-used list keeps at most {@code cachedBlocks} of the others (InfLLM's offloading); the
 * rest live only in the session's {@link io.engram.engine.kv.UnitStore}. Blocks the init tokens or the window still
 * need (pinned) are never offloaded.
 */
final class UnitResidency {

    private UnitResidency() {}

    /** Makes the blocks of {@code chosen} resident for {@code layer} and trims the layer's LRU to its budget. */
    static void retrieve(RetrievalMemory policy, RetrievalState st, KvCache cache, int layer, List<Unit> chosen) {
        Set<KvBlock> need = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Unit u : chosen) {
            for (KvBlock b : RetrievalMemory.blocksOf(cache, u.start(), u.end())) {
                if (!policy.pinned(st, b)) {
                    need.add(b);
                }
            }
        }
        LinkedHashMap<KvBlock, Boolean> lru = st.lru.get(layer);
        for (KvBlock b : need) {
            cache.ensureResident(b, layer);
            lru.put(b, Boolean.TRUE);
        }
        int cap = Math.max(policy.cfg.cachedBlocks(), need.size());
        Iterator<KvBlock> it = lru.keySet().iterator();
        while (lru.size() > cap && it.hasNext()) {
            KvBlock b = it.next();
            if (!need.contains(b)) {
                it.remove();
                if (!policy.pinned(st, b)) { // a truncate may have brought it back into the window
                    cache.offload(b, layer);
                }
            }
        }
    }

    /** Blocks all of whose tokens were packed after {@code before} leave engine memory until a layer retrieves them. */
    static void packed(RetrievalMemory policy, RetrievalState st, KvCache cache, long before) {
        List<KvBlock> all = cache.blocks();
        for (KvBlock b : all.subList(cache.firstBlockEndingAfter(before), all.size())) {
            long bEnd = b.firstSeq() + b.capacity();
            if (bEnd > before && !policy.pinned(st, b)) {
                for (int l = 0; l < policy.layers; l++) {
                    if (!st.lru.get(l).containsKey(b)) {
                        cache.offload(b, l);
                    }
                }
                st.mass.remove(b);
            }
        }
    }

    /** After a restore: blocks all of whose tokens are packed leave engine memory, as they would have. */
    static void restored(RetrievalMemory policy, RetrievalState st, KvCache cache) {
        for (KvBlock b : cache.blocks()) {
            if (!policy.pinned(st, b)) {
                for (int l = 0; l < policy.layers; l++) {
                    cache.offload(b, l);
                }
            }
        }
    }
}
