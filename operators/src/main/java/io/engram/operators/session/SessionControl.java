package io.engram.operators.session;

import io.engram.engine.kv.KvCache;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.EventProvenance;
import io.engram.schemas.SessionIndex;
import io.engram.state.session.SessionMemoryRepository;
import org.apache.flink.api.common.state.MapState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What happens to a session's memory as a whole: cleared on RESET and CLOSE_SESSION (with everything kept beside it),
 * summarized on REQUEST_SUMMARY, dropped when the session was idle for the configured span. Called with the session
 * as the operator's current key.
 */
final class SessionControl {
    private static final Logger LOG = LoggerFactory.getLogger(SessionControl.class);

    private final SessionMemoryRepository repository;
    private final HotSessions hot;
    private final SessionPolicyStates policyStates;
    private final MapState<Integer, EventProvenance> events;
    private final QueryAdmission admission;
    private final SessionSummaries summaries;
    private final SessionRetention retention;
    private final IdleSessions idle;
    private final SessionMetrics metrics;
    private final ContentIngest ingest;
    private final FailureIsolation isolation;

    SessionControl(
            SessionMemoryRepository repository,
            HotSessions hot,
            SessionPolicyStates policyStates,
            MapState<Integer, EventProvenance> events,
            QueryAdmission admission,
            SessionSummaries summaries,
            SessionRetention retention,
            IdleSessions idle,
            SessionMetrics metrics,
            ContentIngest ingest,
            FailureIsolation isolation) {
        this.repository = repository;
        this.hot = hot;
        this.policyStates = policyStates;
        this.events = events;
        this.admission = admission;
        this.summaries = summaries;
        this.retention = retention;
        this.idle = idle;
        this.metrics = metrics;
        this.ingest = ingest;
        this.isolation = isolation;
    }

    /** Applies a control event to its session (the current key). */
    void apply(EngramEvent event, ControlEvent c) throws Exception {
        switch (c.getAction()) {
            case RESET, CLOSE_SESSION -> {
                hot.forget(event.getSessionId());
                repository.clear(event.getSessionId());
                policyStates.clear(event.getSessionId());
                events.clear();
                admission.clear();
                summaries.clear();
                retention.clear();
                idle.clear();
                metrics.cleared(event.getSessionId());
                LOG.info("session {}: memory cleared ({})", event.getSessionId(), c.getAction());
            }
            case REQUEST_SUMMARY -> summarize(event);
            default ->
                throw new BadInput(ErrorClass.UNSUPPORTED, "control action " + c.getAction() + " is not supported");
        }
    }

    /** A SESSION summary on request (see {@link SessionSummaries#session}). */
    private void summarize(EngramEvent event) throws Exception {
        String session = event.getSessionId();
        SessionIndex idx = repository.index(session);
        if (idx == null) {
            throw new BadInput(
                    ErrorClass.UNKNOWN_SESSION, "summary requested for session " + session + ", which has no memory");
        }
        KvCache mem = ingest.loaded(event, idx).cache();
        summaries.session(event, mem, repository.index(session));
    }

    /**
     * Drops the KV memory of a session that had no event for the idle span (an episode summary first, a DroppedUnit
     * per block); its provenance, summaries and records stay, and a later event starts its memory afresh. A failure
     * here is logged and leaves the memory as it was: there is no event to dead-letter, and the next idle check retries.
     */
    void expireIdle(String session, long at) throws Exception {
        SessionIndex idx = repository.index(session);
        if (idx == null || idx.getBlockIds().isEmpty()) {
            return;
        }
        try {
            io.engram.state.session.SessionMemoryRepository.Loaded l = repository.load(session, idx);
            for (io.engram.state.session.SessionMemoryRepository.DamagedBlock d : l.damaged()) {
                repository.delete(session, d.blockId()); // damaged: not summarized, gone with the rest
            }
            SessionIndex updated = retention.expire(session, at, l.memory(), idx);
            repository.saveIndex(session, updated);
            policyStates.clear(session);
            hot.forget(session);
            repository.invalidate(session);
            metrics.cleared(session);
        } catch (Exception | OutOfMemoryError | StackOverflowError | AssertionError e) {
            if (Thread.currentThread().isInterrupted()) {
                throw e;
            }
            isolation.forget(session);
            LOG.warn(
                    "session {}: dropping its idle memory failed; it is kept and checked again after the next idle span",
                    session,
                    e);
            idle.touch(at);
        }
    }
}
