package io.engram.operators.session;

import java.io.Serializable;
import java.util.EnumSet;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * Failures the session operator raises on purpose, for fault-injection tests and the reliability soak: at the chosen
 * points, with the given probability, for the given sessions (all when empty), at most {@code limit} times per operator
 * instance (0: no limit). Off unless configured ({@link #NONE}); the failures are {@link InjectedFault}s, handled like
 * any other failure of the engine or the store.
 *
 * @param points where failures may be raised
 * @param rate probability per call at a chosen point, in [0, 1]
 * @param seed of the draws (each subtask mixes in its index)
 * @param sessions the sessions that may fail (empty: every session)
 * @param limit failures raised at most per operator instance (0: no limit)
 */
public record SessionFaults(Set<Point> points, double rate, long seed, Set<String> sessions, int limit) implements Serializable {
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
            throw new IllegalArgumentException("fault rate must be in [0, 1] and the limit >= 0, got " + rate + " and " + limit);
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

    /** The draws of one operator instance. */
    Injector injector(int subtask) {
        return new Injector(this, new SplittableRandom(seed * 31 + subtask));
    }

    /** Raises the configured failures of one operator instance. */
    static final class Injector {
        private final SessionFaults plan;
        private final SplittableRandom random;
        private int raised;

        private Injector(SessionFaults plan, SplittableRandom random) {
            this.plan = plan;
            this.random = random;
        }

        /** @throws InjectedFault when the plan says this call fails */
        void at(Point point, String session) {
            if (!plan.points.contains(point) || (!plan.sessions.isEmpty() && !plan.sessions.contains(session))
                    || (plan.limit > 0 && raised >= plan.limit) || random.nextDouble() >= plan.rate) {
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
