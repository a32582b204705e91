package io.engram.topology.queries;

import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.Summary;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.function.Function;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

/**
 * Reads sessions from this instance's {@link EngramQueries} stores (interactive queries). Every call may throw {@link
 * org.apache.kafka.streams.errors.InvalidStateStoreException} while the stores are not available (starting,
 * rebalancing). Thread-safe.
 */
public final class SessionReader {

    private static final StringSerializer KEYS = new StringSerializer();

    /** One row of the session list. */
    public record SessionRow(String sessionId, int contentEvents, int queries, int answers) {}

    private final KafkaStreams streams;

    public SessionReader(KafkaStreams streams) {
        this.streams = streams;
    }

    /** Everything the stores hold about {@code session}. */
    public SessionData read(String session) {
        return read(session, Integer.MAX_VALUE);
    }

    /**
     * The newest {@code limit} records of each of the session's logs (events, answers, summaries, attributions), each
     * in topic order: a long session is read from its end, never whole. {@link SessionData#truncated()} tells whether
     * a log holds more.
     */
    public SessionData read(String session, int limit) {
        return read(session, limit, Long.MAX_VALUE);
    }

    /**
     * An older page: as {@link #read(String, int)}, of what came before input offset {@code before} (the session's
     * events before it, the answers to its queries before it, the summaries ending before it, those answers'
     * attributions). {@code Long.MAX_VALUE}: the newest page.
     */
    public SessionData read(String session, int limit, long before) {
        ReadOnlyKeyValueStore<String, Summary> latest = store(EngramQueries.SUMMARIES_STORE);
        boolean[] more = new boolean[1];
        List<EngramEvent> events = log(
                EngramQueries.SESSION_EVENTS_STORE,
                session,
                EngramEvent::getSessionId,
                limit,
                more,
                e -> e.getSource() == null || e.getSource().getOffset() < before);
        List<Answer> answers = log(
                EngramQueries.SESSION_ANSWERS_STORE,
                session,
                Answer::getSessionId,
                limit,
                more,
                a -> a.getQuerySource() == null || a.getQuerySource().getOffset() < before);
        java.util.Set<String> answered = new java.util.HashSet<>();
        answers.forEach(a -> answered.add(a.getQueryId()));
        return new SessionData(
                session,
                events,
                answers,
                log(
                        EngramQueries.SESSION_SUMMARIES_STORE,
                        session,
                        Summary::getSessionId,
                        limit,
                        more,
                        m -> m.getLastEvent() == null || m.getLastEvent().getOffset() < before),
                log(
                        EngramQueries.SESSION_ATTRIBUTIONS_STORE,
                        session,
                        Attribution::getSessionId,
                        limit,
                        more,
                        t -> before == Long.MAX_VALUE || answered.contains(t.getQueryId())),
                before == Long.MAX_VALUE ? latest.get(session) : null,
                more[0]);
    }

    /**
     * The sessions with input events or answers, by id, at most {@code limit} of them.
     *
     * <p>Visits one key per session (a range scan that skips past each session's keys), then counts the listed sessions'
     * records.
     */
    public List<SessionRow> sessions(int limit) {
        TreeMap<String, Boolean> ids = new TreeMap<>();
        sessionIds(EngramQueries.SESSION_EVENTS_STORE, limit, ids);
        sessionIds(EngramQueries.SESSION_ANSWERS_STORE, limit, ids);
        List<SessionRow> rows = new ArrayList<>();
        for (String id : ids.keySet()) {
            if (rows.size() == limit) {
                break;
            }
            int content = 0;
            int queries = 0;
            for (EngramEvent e : this.<EngramEvent>log(
                    EngramQueries.SESSION_EVENTS_STORE,
                    id,
                    EngramEvent::getSessionId,
                    Integer.MAX_VALUE,
                    new boolean[1])) {
                if (e.getPayload() instanceof io.engram.schemas.ContentEvent) {
                    content++;
                } else if (e.getPayload() instanceof io.engram.schemas.QueryEvent) {
                    queries++;
                }
            }
            int answers = log(
                            EngramQueries.SESSION_ANSWERS_STORE,
                            id,
                            Answer::getSessionId,
                            Integer.MAX_VALUE,
                            new boolean[1])
                    .size();
            rows.add(new SessionRow(id, content, queries, answers));
        }
        return rows;
    }

    private void sessionIds(String storeName, int limit, TreeMap<String, Boolean> into) {
        ReadOnlyKeyValueStore<String, Object> store = store(storeName);
        String from = null;
        for (int found = 0; found < limit; found++) {
            try (KeyValueIterator<String, Object> it = store.range(from, null)) {
                if (!it.hasNext()) {
                    return;
                }
                String session = SessionLog.sessionOf(it.peekNextKey());
                into.put(session, Boolean.TRUE);
                from = session + '\u0001'; // the first key after every key of this session
            }
        }
    }

    /**
     * The session's newest {@code limit} records of one log, in topic order; sets {@code more[0]} when there are more.
     * Read newest first over the session's key range (its prefix up to the first key of the next session id).
     */
    private <T> List<T> log(
            String storeName, String session, Function<T, String> sessionOf, int limit, boolean[] more) {
        return log(storeName, session, sessionOf, limit, more, t -> true);
    }

    /** As above, of the records {@code keep} accepts. */
    private <T> List<T> log(
            String storeName,
            String session,
            Function<T, String> sessionOf,
            int limit,
            boolean[] more,
            java.util.function.Predicate<T> keep) {
        ReadOnlyKeyValueStore<String, T> store = store(storeName);
        String prefix = SessionLog.prefix(session);
        List<T> out = new ArrayList<>();
        try (KeyValueIterator<String, T> it =
                store.reverseRange(prefix, prefix.substring(0, prefix.length() - 1) + '\u0001')) {
            while (it.hasNext()) {
                var kv = it.next();
                if (!kv.key.startsWith(prefix) || !session.equals(sessionOf.apply(kv.value)) || !keep.test(kv.value)) {
                    continue; // a longer id may share the prefix if it contains NUL; or a newer page's record
                }
                if (out.size() == limit) {
                    more[0] = true;
                    break;
                }
                out.add(kv.value);
            }
        }
        java.util.Collections.reverse(out);
        return out;
    }

    private <T> ReadOnlyKeyValueStore<String, T> store(String name) {
        return streams.store(
                StoreQueryParameters.fromNameAndType(name, QueryableStoreTypes.<String, T>keyValueStore()));
    }
}
