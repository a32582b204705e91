package io.engram.operators.session;

import io.engram.engine.generate.TokenListener;
import io.engram.engine.kv.KvCache;
import io.engram.engine.session.Reply;
import io.engram.engine.session.SessionEngine;
import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionRequest;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.QueryEvent;
import io.engram.state.session.SessionMemoryRepository;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.flink.util.function.ThrowingConsumer;

/**
 * The parked queries of {@link SessionMemoryOperator}, answered in batches across sessions: the first parked query of
 * every parked session in one batch of shared forward passes, then the next ones; a batch that fails is answered query
 * by query, so one session's failure costs the others nothing. Each answer goes out with its FAST attribution and a
 * request for the PRECISE tier. The keyed-state handles act on the operator's current key, which {@code setKey} moves
 * from session to session.
 */
final class QueryBatches {

    /** Where answers, attributions and precise-attribution requests go. */
    record Outputs(
            ThrowingConsumer<Answer, Exception> answers,
            ThrowingConsumer<Attribution, Exception> attributions,
            ThrowingConsumer<AttributionRequest, Exception> requests) {}

    private final SessionSettings settings;
    private final SessionEngine engine;
    private final PendingQueries pending;
    private final ContentIngest ingest;
    private final SessionMemoryRepository repository;
    private final FailureIsolation isolation;
    private final SessionPolicyStates policyStates;
    private final SessionAnswerRecords records;
    private final SessionMetrics metrics;
    private final SessionFaults.Injector injector;
    private final QueryAdmission admission;
    private final ThrowingConsumer<String, Exception> setKey;
    private final Outputs out;
    /** How long the last batch of answers took. */
    private long lastBatchMillis;

    QueryBatches(
            SessionSettings settings,
            SessionEngine engine,
            PendingQueries pending,
            ContentIngest ingest,
            SessionMemoryRepository repository,
            FailureIsolation isolation,
            SessionPolicyStates policyStates,
            SessionAnswerRecords records,
            SessionMetrics metrics,
            SessionFaults.Injector injector,
            QueryAdmission admission,
            ThrowingConsumer<String, Exception> setKey,
            Outputs out) {
        this.settings = settings;
        this.engine = engine;
        this.pending = pending;
        this.ingest = ingest;
        this.repository = repository;
        this.isolation = isolation;
        this.policyStates = policyStates;
        this.records = records;
        this.metrics = metrics;
        this.injector = injector;
        this.admission = admission;
        this.setKey = setKey;
        this.out = out;
    }

    /**
     * Answers the parked queries: the first parked query of every parked session in one batch, then the next ones,
     * until none is left. Each query runs over its session's memory as stored.
     */
    void flush(Set<String> parked) throws Exception {
        while (!parked.isEmpty()) {
            List<EngramEvent> batchEvents = new ArrayList<>();
            List<SessionRepairs.Memory> memories = new ArrayList<>();
            for (String s : new ArrayList<>(parked)) {
                setKey.accept(s);
                EngramEvent e = pending.peek();
                if (e == null) {
                    parked.remove(s);
                    continue;
                }
                SessionRepairs.Memory[] mem = new SessionRepairs.Memory[1];
                if (!isolation.guarded(e, () -> mem[0] = ingest.loaded(e, repository.index(s)))) {
                    dequeue(e, parked);
                    continue;
                }
                batchEvents.add(e);
                memories.add(mem[0]);
                if (batchEvents.size() == settings.batching().maxBatch()) {
                    break;
                }
            }
            if (batchEvents.isEmpty()) {
                continue;
            }
            List<Reply> answers = answers(batchEvents, memories);
            for (int i = 0; i < batchEvents.size(); i++) {
                EngramEvent e = batchEvents.get(i);
                setKey.accept(e.getSessionId());
                dequeue(e, parked);
                if (answers.get(i) == null) {
                    continue; // failed alone too: dead-lettered
                }
                SessionRepairs.Memory m = memories.get(i);
                Reply a = answers.get(i);
                isolation.guarded(e, () -> {
                    policyStates.remember(e.getSessionId(), m.cache());
                    out.answers().accept(records.answer(e, a, m.cache(), m.fingerprint(), lastBatchMillis));
                    attribute(e, a, m.cache(), lastBatchMillis);
                });
            }
        }
    }

    /**
     * The batch's answers, in order. When the batch fails, each query is answered alone, so one session's failure
     * costs the others nothing: a query that fails alone is dead-lettered and its answer is null.
     */
    private List<Reply> answers(List<EngramEvent> events, List<SessionRepairs.Memory> memories) throws Exception {
        try {
            return timedAnswers(events, memories);
        } catch (Exception | OutOfMemoryError | StackOverflowError | AssertionError e) {
            if (Thread.currentThread().isInterrupted()) {
                throw e;
            }
            if (events.size() == 1) {
                setKey.accept(events.get(0).getSessionId());
                isolation.failed(events.get(0), e, false); // answering writes nothing
                return java.util.Arrays.asList(new Reply[1]);
            }
        }
        List<Reply> replies = new ArrayList<>();
        for (int i = 0; i < events.size(); i++) {
            EngramEvent e = events.get(i);
            setKey.accept(e.getSessionId());
            Reply[] one = new Reply[1];
            int at = i;
            isolation.guarded(
                    e,
                    () -> one[0] =
                            timedAnswers(List.of(e), List.of(memories.get(at))).get(0));
            replies.add(one[0]);
        }
        return replies;
    }

    private List<Reply> timedAnswers(List<EngramEvent> events, List<SessionRepairs.Memory> memories) {
        List<SessionEngine.Query> batch = new ArrayList<>();
        for (int i = 0; i < events.size(); i++) {
            injector.at(
                    SessionFaults.Point.ANSWER,
                    events.get(i).getSessionId(),
                    events.get(i).getEventId());
            QueryEvent q = (QueryEvent) events.get(i).getPayload();
            batch.add(new SessionEngine.Query(
                    memories.get(i).cache(), q.getQuestion(), admission.sampling(q.getOptions()), TokenListener.NONE));
        }
        long t0 = System.nanoTime();
        List<Reply> answers = engine.answerBatch(batch);
        long t1 = System.nanoTime();
        long batchTokens = 0;
        for (Reply a : answers) {
            batchTokens += a.generation().promptTokens() + a.generation().tokens().length;
        }
        metrics.answered(answers.size(), batchTokens, t1 - t0);
        lastBatchMillis = (t1 - t0) / 1_000_000;
        return answers;
    }

    /** Removes {@code e}, the oldest parked query of the current session. */
    private void dequeue(EngramEvent e, Set<String> parked) throws Exception {
        EngramEvent head = pending.peek();
        if (head != null && head.equals(e) && !pending.poll()) {
            parked.remove(e.getSessionId());
        }
    }

    /**
     * The answer's attribution records: FAST now (its scores came with the answer), and a request for the PRECISE
     * tier, which runs downstream so the answer never waits for it.
     */
    private void attribute(EngramEvent e, Reply a, KvCache mem, long elapsedMs) throws Exception {
        Attribution fast = records.fast(e, a, elapsedMs);
        if (fast != null) {
            out.attributions().accept(fast);
        }
        io.engram.schemas.AttributionRequest request = records.request(e, a, mem);
        if (request != null) {
            out.requests().accept(request);
        }
    }
}
