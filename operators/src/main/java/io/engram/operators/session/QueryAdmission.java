package io.engram.operators.session;

import io.engram.engine.generate.SamplingOptions;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.state.session.SessionMemoryRepository;
import java.util.List;
import org.apache.flink.api.common.state.MapState;

/**
 * Which queries {@link SessionMemoryOperator} parks, and with what generation options: a query needs a session with
 * memory, room in the session's queue ({@code engram.engine.max-pending-queries}), an id the session has not used, a
 * question and valid options. Its keyed-state handles act on the operator's current key.
 */
final class QueryAdmission {
    private final SessionSettings settings;
    private final SessionMemoryRepository repository;
    private final PendingQueries pending;
    private final MapState<String, Boolean> queryIds;

    QueryAdmission(
            SessionSettings settings,
            SessionMemoryRepository repository,
            PendingQueries pending,
            MapState<String, Boolean> queryIds) {
        this.settings = settings;
        this.repository = repository;
        this.pending = pending;
        this.queryIds = queryIds;
    }

    SamplingOptions sampling(GenerationOptions o) {
        int max = o == null || o.getMaxNewTokens() <= 0
                ? Math.min(64, settings.answers().maxNewTokensCap())
                : Math.min(o.getMaxNewTokens(), settings.answers().maxNewTokensCap());
        SamplingOptions s = SamplingOptions.greedy(max);
        if (o == null) {
            return s;
        }
        if (o.getTemperature() > 0) {
            s = s.withSampling(
                    o.getTemperature(),
                    o.getTopK() == null ? 0 : o.getTopK(),
                    o.getTopP() == null ? 1.0 : o.getTopP(),
                    o.getSeed() == null ? 0 : o.getSeed());
        }
        return o.getStop() == null || o.getStop().isEmpty() ? s : s.withStops(List.of(), List.copyOf(o.getStop()));
    }

    /**
     * Admits {@code q} of {@code event}'s session (the current key) into its queue.
     *
     * @throws BadInput when the session has no memory, too many queries waiting, the id was used, or the query is malformed
     */
    void admit(EngramEvent event, QueryEvent q) throws Exception {
        if (repository.index(event.getSessionId()) == null) {
            throw new BadInput(
                    ErrorClass.UNKNOWN_SESSION,
                    "query " + q.getQueryId() + " for session " + event.getSessionId()
                            + ", which has no memory (no content was ingested, or it was reset)");
        }
        if (pending.size() >= settings.limits().maxPendingQueries()) {
            throw new BadInput(
                    ErrorClass.TOO_LARGE,
                    "session " + event.getSessionId() + " already has " + pending.size()
                            + " queries waiting to be answered (engram.engine.max-pending-queries): ask again once they are");
        }
        if (queryIds.contains(q.getQueryId())) {
            throw new BadInput(
                    ErrorClass.INVALID_EVENT,
                    "query id " + q.getQueryId() + " was already used in session " + event.getSessionId()
                            + ": every query needs its own id (answers are found by session and query id)");
        }
        if (q.getQuestion() == null || q.getQuestion().isBlank()) {
            throw new BadInput(ErrorClass.INVALID_EVENT, "query " + q.getQueryId() + " has no question");
        }
        try {
            sampling(q.getOptions());
        } catch (IllegalArgumentException e) {
            throw new BadInput(ErrorClass.INVALID_EVENT, "query " + q.getQueryId() + ": " + e.getMessage());
        }
        queryIds.put(q.getQueryId(), true);
        pending.add(event);
    }

    /** Forgets the session's query ids (it was reset or closed). */
    void clear() throws Exception {
        queryIds.clear();
        pending.clear();
    }
}
