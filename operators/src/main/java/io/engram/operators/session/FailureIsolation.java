package io.engram.operators.session;

import io.engram.operators.DeadLetters;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.SessionIndex;
import io.engram.state.codec.CorruptMemoryException;
import io.engram.state.session.IncompatibleMemoryException;
import io.engram.state.session.SessionMemoryRepository;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How {@link SessionMemoryOperator} keeps one session's failures from stopping the job: the work on an event runs
 * guarded, and whatever it throws becomes a dead letter with its class and reason, the session's caches are dropped, and
 * stored memory a failure may have left inconsistent is checked again (damaged blocks are quarantined by
 * {@link SessionRepairs} on that load). Acts on the operator's current key, which must be the event's session.
 */
final class FailureIsolation {
    private static final Logger LOG = LoggerFactory.getLogger(FailureIsolation.class);

    private final SessionMemoryRepository repository;
    private final SessionPolicyStates policyStates;
    private final HotSessions hot;
    private final SessionMetrics metrics;
    private final Consumer<DeadLetter> deadLetters;
    private ContentIngest ingest;

    FailureIsolation(
            SessionMemoryRepository repository,
            SessionPolicyStates policyStates,
            HotSessions hot,
            SessionMetrics metrics,
            Consumer<DeadLetter> deadLetters) {
        this.repository = repository;
        this.hot = hot;
        this.policyStates = policyStates;
        this.metrics = metrics;
        this.deadLetters = deadLetters;
    }

    /** The write path whose loads re-check memory after a failure (it reports damage through this isolation). */
    void checkWith(ContentIngest ingest) {
        this.ingest = ingest;
    }

    /** Work on one event of the session that is the current key. */
    @FunctionalInterface
    interface Work {
        void run() throws Exception;
    }

    /**
     * Runs {@code work} for {@code event} (whose session is the current key). Whatever goes wrong becomes a dead letter
     * and the job goes on: bad input and memory built for another model are refused; any other failure (engine,
     * device or heap memory, store, a bug) leaves the event unapplied, and when the store was written before it failed
     * the session's memory is checked again, any block that is not what its index lists being quarantined.
     *
     * @return whether it succeeded
     */
    boolean guarded(EngramEvent event, Work work) throws Exception {
        boolean ok = false;
        try {
            ok = isolated(event, work);
            return ok;
        } finally {
            if (!ok) {
                hot.forget(event.getSessionId()); // whatever failed may have changed the kept memory
            }
        }
    }

    private boolean isolated(EngramEvent event, Work work) throws Exception {
        long writes = repository.writes();
        try {
            work.run();
            return true;
        } catch (BadInput e) {
            deadLetter(event, e.errorClass, e.getMessage(), null);
        } catch (IncompatibleMemoryException e) {
            deadLetter(event, ErrorClass.UNSUPPORTED, e.getMessage(), null);
        } catch (CorruptMemoryException e) {
            forget(event.getSessionId());
            LOG.error("session {}: stored memory failed its checks: {}", event.getSessionId(), e.getMessage());
            deadLetter(
                    event,
                    ErrorClass.CORRUPT_MEMORY,
                    "the session's stored memory is damaged and was not used: " + e.getMessage(),
                    e);
        } catch (InterruptedException e) {
            throw e; // the task is being cancelled
        } catch (Exception | OutOfMemoryError | StackOverflowError | AssertionError e) {
            if (Thread.currentThread().isInterrupted()) {
                throw e;
            }
            failed(event, e, repository.writes() != writes);
        }
        return false;
    }

    /** An event whose handling failed unexpectedly: dead letter, caches dropped, memory checked when in doubt. */
    void failed(EngramEvent event, Throwable e, boolean wrote) throws Exception {
        String session = event.getSessionId();
        forget(session);
        metrics.failure();
        if (e instanceof SessionFaults.InjectedFault) {
            LOG.info("session {}: event {} dead-lettered: {}", session, event.getEventId(), e.getMessage());
        } else {
            LOG.warn(
                    "session {}: event {} failed and was dead-lettered; the session keeps its memory",
                    session,
                    event.getEventId(),
                    e);
        }
        deadLetter(event, ErrorClass.PROCESSING_FAILED, "handling the event failed, it was not applied: " + e, e);
        if (wrote) {
            SessionIndex idx = repository.index(session);
            if (idx != null) {
                try {
                    ingest.loaded(event, idx); // quarantines what the interrupted writes left inconsistent
                } catch (CorruptMemoryException | IncompatibleMemoryException again) {
                    deadLetter(
                            event,
                            ErrorClass.CORRUPT_MEMORY,
                            "after the failure the session's memory is damaged: " + again.getMessage(),
                            again);
                }
            }
        }
    }

    void deadLetter(EngramEvent event, ErrorClass errorClass, String reason, Throwable cause) {
        metrics.deadLetter();
        deadLetters.accept(DeadLetters.forEvent(event, errorClass, reason, cause));
    }

    /** Drops what is cached of the session's memory, so its next event reads the store. */
    void forget(String session) {
        hot.forget(session);
        repository.invalidate(session);
        policyStates.forget(session);
    }
}
