package io.engram.operators.session;

import java.io.IOException;
import org.apache.flink.api.common.state.KeyedStateStore;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.streaming.api.operators.InternalTimerService;

/**
 * When each session last had an event (processing time), and one processing-time timer per session that checks
 * whether it has been idle for {@link SessionSettings.Retention#idleMillis()}: an event only records its time; the timer,
 * when it fires early, is set again for the latest event's time plus the idle span. Everything here is keyed state and
 * timers, so it survives restarts (a timer that came due while the job was down fires on restore).
 * The keyed-state handles act on the operator's current key: every call is for the session that is the current key.
 */
final class IdleSessions {
    /** Processing time of the session's latest event. */
    static final ValueStateDescriptor<Long> LAST_SEEN = new ValueStateDescriptor<>("engram-idle-last-seen", Types.LONG);
    /** When the session's idle timer fires (null: none set). */
    static final ValueStateDescriptor<Long> TIMER = new ValueStateDescriptor<>("engram-idle-timer", Types.LONG);

    private final long idleMillis;
    private final ValueState<Long> lastSeen;
    private final ValueState<Long> timerAt;
    private final InternalTimerService<VoidNamespace> timers;

    IdleSessions(long idleMillis, KeyedStateStore state, InternalTimerService<VoidNamespace> timers) {
        this.idleMillis = idleMillis;
        this.lastSeen = state.getState(LAST_SEEN);
        this.timerAt = state.getState(TIMER);
        this.timers = timers;
    }

    /** The current session had an event at processing time {@code now}. */
    void touch(long now) throws IOException {
        if (idleMillis == 0) {
            return;
        }
        lastSeen.update(now);
        if (timerAt.value() == null) {
            arm(now + idleMillis);
        }
    }

    /**
     * A timer of the current session fired at {@code timestamp}: whether it is the idle timer and the session has had
     * no event for the idle span (then it is forgotten here); an idle timer that fired early is set again.
     */
    boolean expired(long timestamp) throws IOException {
        Long at = idleMillis == 0 ? null : timerAt.value();
        if (at == null || at != timestamp) {
            return false; // another timer (a query batch window), or one left from before a reset
        }
        timerAt.clear();
        Long last = lastSeen.value();
        if (last == null) {
            return false;
        }
        if (timestamp - last >= idleMillis) {
            lastSeen.clear();
            return true;
        }
        arm(last + idleMillis);
        return false;
    }

    /** Forgets the session (it was reset or closed); a timer still set is ignored when it fires. */
    void clear() {
        lastSeen.clear();
        timerAt.clear();
    }

    private void arm(long at) throws IOException {
        timers.registerProcessingTimeTimer(VoidNamespace.INSTANCE, at);
        timerAt.update(at);
    }
}
