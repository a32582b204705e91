package io.engram.operators.session;

import io.engram.engine.kv.KvCache;
import io.engram.engine.session.SessionEngine;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.EventProvenance;
import io.engram.schemas.SessionIndex;
import io.engram.state.session.SessionMemoryRepository;
import java.util.List;
import org.apache.flink.api.common.state.MapState;

/**
 * The write path of {@link SessionMemoryOperator}: loads a session's stored memory for an event (quarantining damaged
 * blocks through {@link SessionRepairs}), or takes it from {@link HotSessions}, and ingests content events into it. The keyed-state handles act on the
 * operator's current key, which must be the event's session.
 */
final class ContentIngest {
    private final SessionSettings settings;
    private final SessionEngine engine;
    private final String modelName;
    private final SessionMemoryRepository repository;
    private final SessionRepairs repairs;
    private final SessionPolicyStates policyStates;
    private final SessionSummaries summaries;
    private final SessionRetention retention;
    private final MapState<Integer, EventProvenance> events;
    private final SessionMetrics metrics;
    private final SessionFaults.Injector injector;
    private final HotSessions hot;

    ContentIngest(SessionSettings settings, SessionEngine engine, String modelName, SessionMemoryRepository repository,
            SessionRepairs repairs, SessionPolicyStates policyStates, SessionSummaries summaries, SessionRetention retention,
            MapState<Integer, EventProvenance> events, SessionMetrics metrics, SessionFaults.Injector injector,
            HotSessions hot) {
        this.hot = hot;
        this.settings = settings;
        this.engine = engine;
        this.modelName = modelName;
        this.repository = repository;
        this.repairs = repairs;
        this.policyStates = policyStates;
        this.summaries = summaries;
        this.retention = retention;
        this.events = events;
        this.metrics = metrics;
        this.injector = injector;
    }

    /**
     * Ingests one content event. Nothing is written until the engine has prefilled it and its blocks are encoded, so
     * a failure before that leaves the stored memory as it was; then blocks, provenance and index are written.
     */
    void ingest(EngramEvent event, ContentEvent c) throws Exception {
        if (c.getText() == null || c.getText().isBlank()) {
            throw new BadInput(ErrorClass.INVALID_EVENT, "content event has no text");
        }
        String session = event.getSessionId();
        SessionIndex idx = repository.index(session);
        KvCache mem = idx == null ? repository.create(session) : loaded(event, idx).cache();
        if (idx != null) {
            idx = repository.index(session); // a quarantine may have rewritten it
        }
        int eventIndex = idx == null ? 0 : idx.getEventCount();
        long firstSeq = mem.nextSeq();
        injector.at(SessionFaults.Point.INGEST, session, event.getEventId());
        long t0 = System.nanoTime();
        SessionEngine.Ingested in;
        try {
            in = engine.ingest(mem, c.getText(), eventIndex, settings.limits().maxEventTokens());
        } catch (SessionEngine.TooManyTokensException e) {
            throw new BadInput(ErrorClass.TOO_LARGE, e.getMessage() + " (engram.engine.max-event-tokens): split the text into"
                    + " several content events or raise the cap");
        }
        metrics.ingested(in.tokens(), System.nanoTime() - t0);
        java.util.Map<Long, Integer> crcs = SessionMemoryRepository.checksums(idx);
        List<SessionMemoryRepository.Encoded> encoded = repository.encode(mem, in.touchedBlocks());
        for (SessionMemoryRepository.Encoded e : encoded) {
            crcs.put(e.block().id(), e.crc());
        }
        SessionIndex updated = SessionMemoryRepository.indexOf(idx, session, mem, crcs, modelName, settings.engine().blockSize())
                .setEventCount(eventIndex + 1).build();
        // the provenance first (summaries cite it); harmless if the event fails later: the index does not count it yet
        events.put(eventIndex, EventProvenance.newBuilder().setEventId(event.getEventId()).setSource(event.getSource())
                .setFirstSeq(firstSeq).setTokenCount(in.tokens()).setCharLength(c.getText().length()).build());
        summaries.afterIngest(event, mem, updated, eventIndex);
        retention.apply(event, mem, updated, crcs);
        for (int i = 0; i < encoded.size(); i++) {
            repository.write(session, mem, encoded.get(i));
            if (i == 0) {
                injector.at(SessionFaults.Point.WRITE, session, event.getEventId());
            }
        }
        repository.saveIndex(session, updated);
        metrics.memory(session, mem);
        policyStates.remember(session, mem);
        SessionIndex stored = repository.index(session);
        hot.put(session, stored, mem, SessionMemoryRepository.fingerprint(stored.getBlockCrcs()));
    }

    /**
     * The session's memory as {@code idx} lists it, with the policy's state adopted; blocks that fail their checks are
     * quarantined first ({@link SessionRepairs}).
     */
    SessionRepairs.Memory loaded(EngramEvent event, SessionIndex idx) throws Exception {
        SessionRepairs.Memory kept = hot.get(event.getSessionId(), idx);
        if (kept != null) {
            metrics.reused();
            return kept;
        }
        SessionMemoryRepository.Loaded l = repository.load(event.getSessionId(), idx);
        if (!l.damaged().isEmpty()) {
            repairs.quarantine(event, idx, l);
        }
        policyStates.adopt(event.getSessionId(), idx.getNextSeq(), l.memory());
        metrics.memory(event.getSessionId(), l.memory());
        metrics.workingSet(repository.workingSet());
        return new SessionRepairs.Memory(l.memory(), l.fingerprint());
    }
}
