package io.engram.operators.session;

import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.memory.PolicySnapshot;
import io.engram.schemas.MemoryUnit;
import io.engram.schemas.PolicyState;
import io.engram.state.session.PolicyStateCodec;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.ValueState;

/**
 * The memory policy's state of each session (scores, units, retained sets, the logits that score its next token)
 * between its events, for
 * {@link SessionMemoryOperator}: in memory for the most recent {@link #SESSIONS_KEPT} sessions, and in keyed state
 * ({@code POLICY_UNITS}, {@code POLICY_STATE}; new units only, as {@link PolicyStateCodec} writes them) so that it
 * survives a restart or a move to another task.
 * The keyed-state handles act on the operator's current key: every call is for the session that is the current key.
 */
final class SessionPolicyStates {
    /** Sessions whose policy state is kept in memory between events (beyond that, it is read back from keyed state). */
    static final int SESSIONS_KEPT = 4096;

    /** The in-memory policy states of a session, valid for the memory that ends at {@code nextSeq}. */
    private record Kept(long nextSeq, Map<Object, io.engram.engine.kv.PolicyState> states) {}

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
            units.put(i++, PolicyStateCodec.unit(u));
        }
        state.update(
                PolicyStateCodec.state(snap, mem.nextSeq(), policy.needsTokenScores() ? mem.carriedLogits() : null));
    }

    /**
     * Gives memory just loaded (ending at {@code indexNextSeq}) its policy state: the one kept in memory when it belongs
     * to that memory, else the one in keyed state when that does.
     */
    void adopt(String session, long indexNextSeq, KvCache mem) throws Exception {
        Kept kept = recent.get(session);
        if (kept != null && kept.nextSeq() == indexNextSeq) {
            mem.adoptPolicyStates(kept.states());
            PolicyState ps =
                    policy.needsTokenScores() ? state.value() : null; // the carried logits are not kept in memory
            if (ps != null && ps.getNextSeq() == indexNextSeq) {
                mem.restoreCarriedLogits(PolicyStateCodec.carriedLogits(ps));
            }
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
        List<MemoryUnit> stored = new ArrayList<>(ps.getUnitCount());
        for (int i = 0; i < ps.getUnitCount(); i++) {
            stored.add(units.get(i));
        }
        policy.restore(mem, PolicyStateCodec.snapshot(ps, stored));
        mem.restoreCarriedLogits(PolicyStateCodec.carriedLogits(ps));
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
}
