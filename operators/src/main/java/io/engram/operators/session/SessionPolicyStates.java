package io.engram.operators.session;

import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.memory.PolicySnapshot;
import io.engram.schemas.MemoryUnit;
import io.engram.schemas.MemoryUnitKind;
import io.engram.schemas.PolicyState;
import io.engram.state.codec.CorruptMemoryException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.ValueState;

/**
 * The memory policy's state of each session (scores, units, retained sets) between its events, for
 * {@link SessionMemoryOperator}: in memory for the most recent {@link #SESSIONS_KEPT} sessions, and in keyed state
 * ({@code POLICY_UNITS}, {@code POLICY_STATE}; new units only) so that it survives a restart or a move to another task.
 * The keyed-state handles act on the operator's current key: every call is for the session that is the current key.
 */
final class SessionPolicyStates {
    /** Sessions whose policy state is kept in memory between events (beyond that, it is read back from keyed state). */
    static final int SESSIONS_KEPT = 4096;

    /** The in-memory policy states of a session, valid for the memory that ends at {@code nextSeq}. */
    private record Kept(long nextSeq, Map<Object, Object> states) {}

    private final MemoryPolicy policy;
    private final MapState<Integer, MemoryUnit> units;
    private final ValueState<PolicyState> state;
    /** Access-ordered, so the least recently used session goes first. */
    private final LinkedHashMap<String, Kept> recent = new LinkedHashMap<>(16, 0.75f, true);

    SessionPolicyStates(MemoryPolicy policy, MapState<Integer, MemoryUnit> units, ValueState<PolicyState> state) {
        this.policy = policy;
        this.units = units;
        this.state = state;
    }

    /**
     * Keeps the session's policy state for its next event: in memory (bounded number of sessions) and in keyed state,
     * new units only.
     */
    void remember(String session, KvCache mem) throws Exception {
        recent.put(session, new Kept(mem.nextSeq(), mem.policyStates()));
        while (recent.size() > SESSIONS_KEPT) {
            recent.remove(recent.keySet().iterator().next());
        }
        PolicyState old = state.value();
        int stored = old == null ? 0 : old.getUnitCount();
        PolicySnapshot snap = policy.snapshot(mem, stored);
        if (snap == null) {
            return;
        }
        if (old != null && !old.getPolicy().equals(snap.policy())) {
            units.clear();
            snap = policy.snapshot(mem, 0);
        } else if (snap.firstUnit() < stored) {
            units.clear(); // units before the stored count changed (retention dropped blocks): write all again
            stored = 0;
        }
        for (int i = snap.unitCount(); i < stored; i++) {
            units.remove(i); // units a truncate took back
        }
        int i = snap.firstUnit();
        for (PolicySnapshot.Unit u : snap.units()) {
            units.put(i++, toRecord(u));
        }
        List<Long> bounds = new ArrayList<>();
        for (long b : snap.boundaries()) {
            bounds.add(b);
        }
        List<Long> kept = new ArrayList<>(snap.retained().length);
        for (long k : snap.retained()) {
            kept.add(k);
        }
        List<Float> scores = new ArrayList<>(snap.retainedScores().length);
        for (float f : snap.retainedScores()) {
            scores.add(f);
        }
        state.update(PolicyState.newBuilder().setPolicy(snap.policy()).setNextSeq(mem.nextSeq())
                .setPackedEnd(snap.packedEnd()).setUnitCount(snap.unitCount()).setBoundaries(bounds).setRetainedSeqs(kept)
                .setRetainedScores(scores).setEvicted(snap.evicted()).setWindowMass(massRecords(snap)).build());
    }

    /**
     * Gives memory just loaded (ending at {@code indexNextSeq}) its policy state: the one kept in memory when it belongs
     * to that memory, else the one in keyed state when that does.
     */
    void adopt(String session, long indexNextSeq, KvCache mem) throws Exception {
        Kept kept = recent.get(session);
        if (kept != null && kept.nextSeq() == indexNextSeq) {
            mem.adoptPolicyStates(kept.states());
        } else {
            restore(mem);
        }
    }

    /** Restores the policy state stored for the session, when it belongs to the memory just loaded. */
    private void restore(KvCache mem) throws Exception {
        PolicyState ps = state.value();
        if (ps == null || ps.getNextSeq() != mem.nextSeq()) {
            return;
        }
        List<PolicySnapshot.Unit> restored = new ArrayList<>(ps.getUnitCount());
        for (int i = 0; i < ps.getUnitCount(); i++) {
            MemoryUnit u = units.get(i);
            if (u == null) {
                throw new CorruptMemoryException("policy state lists " + ps.getUnitCount() + " units but unit " + i + " is missing");
            }
            restored.add(fromRecord(u));
        }
        long[] bounds = ps.getBoundaries().stream().mapToLong(Long::longValue).toArray();
        long[] kept = ps.getRetainedSeqs().stream().mapToLong(Long::longValue).toArray();
        float[] scores = new float[ps.getRetainedScores().size()];
        for (int i = 0; i < scores.length; i++) {
            scores[i] = ps.getRetainedScores().get(i);
        }
        policy.restore(mem, new PolicySnapshot(ps.getPolicy(), ps.getPackedEnd(), ps.getUnitCount(), 0, restored, bounds, kept,
                scores, ps.getEvicted(), massOf(ps)));
    }

    /** Drops the in-memory state of the session (its stored memory failed its checks); keyed state stays. */
    void forget(String session) {
        recent.remove(session);
    }

    /** Drops all of the session's policy state, in memory and in keyed state (the session was reset or closed). */
    void clear(String session) {
        recent.remove(session);
        units.clear();
        state.clear();
    }

    private static List<io.engram.schemas.BlockMass> massRecords(PolicySnapshot snap) {
        List<io.engram.schemas.BlockMass> out = new ArrayList<>(snap.windowMass().size());
        for (PolicySnapshot.BlockMass m : snap.windowMass()) {
            ByteBuffer b = ByteBuffer.allocate(m.mass().length * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (float f : m.mass()) {
                b.putFloat(f);
            }
            b.flip();
            out.add(new io.engram.schemas.BlockMass(m.firstSeq(), b));
        }
        return out;
    }

    private static List<PolicySnapshot.BlockMass> massOf(PolicyState ps) {
        List<PolicySnapshot.BlockMass> out = new ArrayList<>(ps.getWindowMass().size());
        for (io.engram.schemas.BlockMass m : ps.getWindowMass()) {
            ByteBuffer b = m.getMass().duplicate().order(ByteOrder.LITTLE_ENDIAN);
            if (b.remaining() % 4 != 0) {
                throw new CorruptMemoryException("window mass of block " + m.getFirstSeq() + " holds " + b.remaining()
                        + " bytes, not whole floats");
            }
            float[] f = new float[b.remaining() / 4];
            for (int i = 0; i < f.length; i++) {
                f[i] = b.getFloat();
            }
            out.add(new PolicySnapshot.BlockMass(m.getFirstSeq(), f));
        }
        return out;
    }

    static MemoryUnit toRecord(PolicySnapshot.Unit u) {
        int layers = u.repr().length;
        int kvDim = u.repr()[0].length;
        ByteBuffer b = ByteBuffer.allocate(layers * kvDim * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float[] row : u.repr()) {
            for (float f : row) {
                b.putFloat(f);
            }
        }
        b.flip();
        return MemoryUnit.newBuilder().setStartSeq(u.start()).setEndSeq(u.end())
                .setKind(u.episode() ? MemoryUnitKind.EPISODE : MemoryUnitKind.BLOCK)
                .setLayers(layers).setKvDim(kvDim).setReprKeys(b)
                .setIndexLists(u.lists() == null ? java.util.List.of() : java.util.Arrays.stream(u.lists()).boxed().toList()).build();
    }

    static PolicySnapshot.Unit fromRecord(MemoryUnit u) {
        ByteBuffer b = u.getReprKeys().duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() != u.getLayers() * u.getKvDim() * 4) {
            throw new CorruptMemoryException("memory unit [%d, %d) holds %d bytes of keys for %d x %d floats"
                    .formatted(u.getStartSeq(), u.getEndSeq(), b.remaining(), u.getLayers(), u.getKvDim()));
        }
        float[][] repr = new float[u.getLayers()][u.getKvDim()];
        for (float[] row : repr) {
            for (int j = 0; j < row.length; j++) {
                row[j] = b.getFloat();
            }
        }
        int[] lists = u.getIndexLists().isEmpty() ? null : u.getIndexLists().stream().mapToInt(Integer::intValue).toArray();
        return new PolicySnapshot.Unit(u.getStartSeq(), u.getEndSeq(), u.getKind() == MemoryUnitKind.EPISODE, repr, lists);
    }
}
