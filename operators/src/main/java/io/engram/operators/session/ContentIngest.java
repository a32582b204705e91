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

    ContentIngest(
            SessionSettings settings,
            SessionEngine engine,
            String modelName,
            SessionMemoryRepository repository,
            SessionRepairs repairs,
            SessionPolicyStates policyStates,
            SessionSummaries summaries,
            SessionRetention retention,
            MapState<Integer, EventProvenance> events,
            SessionMetrics metrics,
            SessionFaults.Injector injector,
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
        KvCache mem =
                idx == null ? repository.create(session) : loaded(event, idx).cache();
        if (idx != null) {
            idx = repository.index(session); // a quarantine may have rewritten it
        }
        io.engram.schemas.EventPart part = event.getPart();
        EventProvenance continued = continued(event, idx);
        int eventIndex = continued != null ? idx.getEventCount() - 1 : idx == null ? 0 : idx.getEventCount();
        long firstSeq = mem.nextSeq();
        injector.at(SessionFaults.Point.INGEST, session, event.getEventId());
        long t0 = System.nanoTime();
        SessionEngine.Ingested in;
        try {
            in = engine.ingest(
                    mem,
                    c.getText(),
                    eventIndex,
                    continued == null ? 0 : part.getCharOffset(),
                    settings.limits().maxEventTokens());
        } catch (SessionEngine.TooManyTokensException e) {
            throw new BadInput(
                    ErrorClass.TOO_LARGE,
                    e.getMessage() + " (engram.engine.max-event-tokens): split the text into"
                            + " several content events or raise the cap");
        }
        metrics.ingested(in.tokens(), System.nanoTime() - t0);
        java.util.Map<Long, Integer> crcs = SessionMemoryRepository.checksums(idx);
        List<SessionMemoryRepository.Encoded> encoded = repository.encode(mem, in.touchedBlocks());
        for (SessionMemoryRepository.Encoded e : encoded) {
            crcs.put(e.block().id(), e.crc());
        }
        SessionIndex updated = SessionMemoryRepository.indexOf(
                        idx, session, mem, crcs, modelName, settings.engine().blockSize())
                .setEventCount(eventIndex + 1)
                .build();
        // the provenance first (summaries cite it); harmless if the event fails later: the index does not count it yet.
        // A later part extends its event's record, which is only rewritten once the part is in the index (below).
        if (continued == null) {
            events.put(
                    eventIndex,
                    EventProvenance.newBuilder()
                            .setEventId(event.getEventId())
                            .setSource(event.getSource())
                            .setFirstSeq(firstSeq)
                            .setTokenCount(in.tokens())
                            .setCharLength(c.getText().length())
                            .build());
        }
        summaries.afterIngest(event, mem, updated, eventIndex);
        retention.apply(event, mem, updated, crcs);
        for (int i = 0; i < encoded.size(); i++) {
            repository.write(session, mem, encoded.get(i));
            if (i == 0) {
                injector.at(SessionFaults.Point.WRITE, session, event.getEventId());
            }
        }
        repository.saveIndex(session, updated);
        if (continued != null) {
            events.put(
                    eventIndex,
                    EventProvenance.newBuilder(continued)
                            .setTokenCount(continued.getTokenCount() + in.tokens())
                            .setCharLength(part.getCharOffset() + c.getText().length())
                            .build());
        }
        metrics.memory(session, mem);
        policyStates.remember(session, mem);
        SessionIndex stored = repository.index(session);
        hot.put(session, stored, mem, SessionMemoryRepository.fingerprint(stored.getBlockCrcs()));
    }

    /**
     * The provenance of the event that {@code event}, a part after the first of a long content event, continues: the
     * session's last event, when it is the same record and ends where this part starts. Null for a whole event or a
     * first part.
     *
     * @throws BadInput when an earlier part of the event was not applied (dead-lettered): the parts after it are refused
     *     too, so the memory never holds an event with a gap inside
     */
    private EventProvenance continued(EngramEvent event, SessionIndex idx) throws Exception {
        io.engram.schemas.EventPart part = event.getPart();
        if (part == null || part.getIndex() == 0) {
            return null;
        }
        EventProvenance last = idx == null || idx.getEventCount() == 0 ? null : events.get(idx.getEventCount() - 1);
        if (last == null
                || !last.getEventId().equals(event.getEventId())
                || !java.util.Objects.equals(last.getSource(), event.getSource())
                || last.getCharLength() != part.getCharOffset()) {
            throw new BadInput(
                    ErrorClass.INVALID_EVENT,
                    "part %d of %d of event %s (from character %d) was not applied: an "
                                    .formatted(
                                            part.getIndex() + 1,
                                            part.getCount(),
                                            event.getEventId(),
                                            part.getCharOffset())
                            + "earlier part of the event was not (see its dead letter); the session keeps the parts before it");
        }
        return last;
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
