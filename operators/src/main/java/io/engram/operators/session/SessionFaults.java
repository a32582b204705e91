package io.engram.operators.session;

import java.io.Serializable;
import java.util.EnumSet;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Failures the session operator raises on purpose, for fault-injection tests and the reliability soak: at the chosen
 * points, with the given probability, for the given sessions (all when empty), at most {@code limit} times per operator
 * instance (0: no limit). Whether a call fails is drawn from the seed, the point, the session and the event, so a
 * replayed event meets the same fate. Off unless configured ({@link #NONE}); the failures are {@link InjectedFault}s,
 * handled like any other failure of the engine or the store.
 *
 * @param points where failures may be raised
 * @param rate probability per call at a chosen point, in [0, 1]
 * @param seed of the draws
 * @param sessions the sessions that may fail (empty: every session)
 * @param limit failures raised at most per operator instance (0: no limit)
 */
public record SessionFaults(Set<Point> points, double rate, long seed, Set<String> sessions, int limit)
        implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Where a failure can be raised. */
    public enum Point {
        /** before the engine prefills a content event (nothing written yet) */
        INGEST,
        /** after the first of an event's blocks was written, before the rest and the index (memory in doubt) */
        WRITE,
        /** in the engine's answer to a batch of queries */
        ANSWER
    }

    public static final SessionFaults NONE = new SessionFaults(Set.of(), 0, 0, Set.of(), 0);

    public SessionFaults {
        if (rate < 0 || rate > 1 || limit < 0) {
            throw new IllegalArgumentException(
                    "fault rate must be in [0, 1] and the limit >= 0, got " + rate + " and " + limit);
        }
        points = points.isEmpty() ? Set.of() : Set.copyOf(EnumSet.copyOf(points));
        sessions = Set.copyOf(sessions);
    }

    /** A failure raised on purpose. */
    public static final class InjectedFault extends RuntimeException {
        private static final long serialVersionUID = 1L;

        InjectedFault(Point point, String session) {
            super("injected fault at " + point + " for session " + session);
        }
    }

    /** The failures of one operator instance. */
    Injector injector() {
        return new Injector(this);
    }

    /** Raises the configured failures of one operator instance. */
    static final class Injector {
        private final SessionFaults plan;
        private int raised;

        private Injector(SessionFaults plan) {
            this.plan = plan;
        }

        /** @throws InjectedFault when the plan says this call, for {@code event} of {@code session}, fails */
        void at(Point point, String session, String event) {
            if (!plan.points.contains(point)
                    || (!plan.sessions.isEmpty() && !plan.sessions.contains(session))
                    || (plan.limit > 0 && raised >= plan.limit)) {
                return;
            }
            long h = plan.seed * 0x9E3779B97F4A7C15L
                    + point.ordinal() * 0xBF58476D1CE4E5B9L
                    + (session + '\u0000' + event).hashCode() * 0x94D049BB133111EBL;
            if (new SplittableRandom(h).nextDouble() >= plan.rate) {
                return;
            }
            raised++;
            throw new InjectedFault(point, session);
        }

        int raised() {
            return raised;
        }
    }
}
