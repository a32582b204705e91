package io.engram.engine.memory.retrieval;

import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.PolicySnapshot;
import io.engram.engine.memory.retrieval.RetrievalMemory.Unit;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * What a restart must keep of a session's {@link RetrievalState}, as a {@link PolicySnapshot}: the units with their
 * representative keys and index lists, where packing stopped, EM-LLM's event boundaries not packed yet, and the
 * attention mass the window's tokens received so far (so a restored session picks the representatives a session that
 * never stopped would), and EM-LLM's temporal-contiguity buffers (each layer's carries over from step to step).
 */
final class RetrievalSnapshots {

    private RetrievalSnapshots() {}

    /** The units from {@code fromUnit} on (all of them when earlier ones changed since the last snapshot). */
    static PolicySnapshot write(RetrievalState st, KvCache cache, int fromUnit, String policy, boolean episodes) {
        if (st.index.takeReassigned() || st.unitsRemoved) {
            fromUnit = 0; // units before fromUnit changed (or their index lists did): everything is written again
            st.unitsRemoved = false;
        }
        List<PolicySnapshot.Unit> out = new ArrayList<>();
        for (int i = Math.max(0, fromUnit); i < st.units.size(); i++) {
            Unit u = st.units.get(i);
            out.add(new PolicySnapshot.Unit(u.start(), u.end(), episodes, u.repr(), st.index.lists(i)));
        }
        long[] bounds = st.boundaries.stream().mapToLong(Long::longValue).toArray();
        List<PolicySnapshot.BlockMass> mass = new ArrayList<>();
        for (Map.Entry<KvBlock, float[]> e : st.mass.entrySet()) {
            if (cache.blockAt(e.getKey().firstSeq()) == e.getKey()) {
                mass.add(new PolicySnapshot.BlockMass(
                        e.getKey().firstSeq(), e.getValue().clone()));
            }
        }
        mass.sort(Comparator.comparingLong(PolicySnapshot.BlockMass::firstSeq));
        long[][] contiguity = new long[st.contiguity.size()][];
        for (int l = 0; l < contiguity.length; l++) {
            contiguity[l] = st.contiguity.get(l).stream().mapToLong(Unit::start).toArray();
        }
        return new PolicySnapshot(
                policy,
                st.packedEnd,
                st.units.size(),
                Math.max(0, fromUnit),
                out,
                bounds,
                new long[0],
                new float[0],
                false,
                mass,
                contiguity);
    }

    /**
     * Replaces {@code st}'s units, packing end, window mass and boundaries with the snapshot's; returns each unit's
     * stored index lists, in unit order, for the index to take back.
     *
     * @throws IllegalArgumentException when a stored unit's keys do not have the model's shape
     */
    static List<int[]> read(RetrievalState st, KvCache cache, PolicySnapshot s, int layers, int kvHeads, int headDim) {
        int kvDim = kvHeads * headDim;
        st.units.clear();
        List<PolicySnapshot.Unit> stored = new ArrayList<>(s.units());
        stored.sort(Comparator.comparingLong(PolicySnapshot.Unit::start));
        List<int[]> lists = new ArrayList<>(stored.size());
        for (PolicySnapshot.Unit u : stored) {
            if (u.repr().length != layers || u.repr()[0].length != kvDim) {
                throw new IllegalArgumentException(
                        "stored unit [%d, %d) has keys of %d x %d floats; the model needs %d x %d"
                                .formatted(u.start(), u.end(), u.repr().length, u.repr()[0].length, layers, kvDim));
            }
            st.units.add(new Unit(u.start(), u.end(), u.repr()));
            lists.add(u.lists());
        }
        st.packedEnd = s.packedEnd();
        st.mass.clear();
        for (PolicySnapshot.BlockMass m : s.windowMass()) {
            KvBlock b = cache.blockAt(m.firstSeq());
            if (b != null && b.firstSeq() == m.firstSeq() && m.mass().length == layers * kvHeads * b.capacity()) {
                st.mass.put(b, m.mass().clone());
            }
        }
        st.boundaries.clear();
        for (long b : s.boundaries()) {
            st.boundaries.add(b);
        }
        for (int l = 0; l < st.contiguity.size(); l++) {
            List<Unit> buffer = new ArrayList<>();
            if (l < s.contiguity().length) {
                for (long start : s.contiguity()[l]) {
                    int at = Collections.binarySearch(
                            st.units, new Unit(start, start, null), Comparator.comparingLong(Unit::start));
                    if (at >= 0) {
                        buffer.add(st.units.get(at));
                    }
                }
            }
            st.contiguity.set(l, buffer);
        }
        return lists;
    }
}
