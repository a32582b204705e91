package io.engram.operators.session;

import io.engram.engine.kv.KvCache;
import io.engram.state.cache.WorkingSet;
import io.engram.state.codec.KvBlockCodec;
import io.engram.state.codec.KvDType;
import java.util.LinkedHashMap;
import java.util.TreeMap;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;

/**
 * The metrics of one {@link SessionMemoryOperator} instance, on its operator metric group (no group per session:
 * sessions are unbounded). Counters and the histogram are updated on the task thread; gauges are read by reporters on
 * other threads and only see values the task thread published to volatile fields.
 *
 * <p>Memory gauges cover the {@value #TRACKED_SESSIONS} sessions this instance loaded or wrote most recently (after a
 * restore a session appears once it is processed), with unit bytes as encoded in the configured KV dtype: one small
 * map entry per tracked session, so the metrics' memory stays bounded however many sessions the stream has.
 */
final class SessionMetrics {
    static final String TOKENS_INGESTED = "tokensIngested";
    static final String QUERIES_ANSWERED = "queriesAnswered";
    static final String DEAD_LETTERS = "deadLetters";
    static final String FAILURES = "processingFailures";
    static final String ANSWER_LATENCY = "answerLatencyMs";
    static final String SESSIONS = "memorySessions";
    static final String STATE_BYTES = "memoryStateBytes";
    static final String UNITS = "memoryUnits";
    static final String MAX_SESSION_BYTES = "memoryMaxSessionBytes";
    static final String MAX_SESSION_UNITS = "memoryMaxSessionUnits";
    static final String HIT_RATE = "workingSetHitRate";
    /** Events that started from the memory the session's previous event left (HotSessions): nothing loaded. */
    static final String MEMORY_REUSED = "memoryReused";

    static final String EVICTIONS = "workingSetEvictions";
    static final String ENGINE_TOKENS_PER_SECOND = "engineTokensPerSecond";

    /** Sessions whose memory size the gauges cover at most (the most recently active ones). */
    static final int TRACKED_SESSIONS = 10_000;

    /** Answers kept for the latency percentiles. */
    private static final int LATENCY_WINDOW = 1024;

    private final KvDType storage;
    private final int tracked;
    private final Counter tokensIngested;
    private final Counter queriesAnswered;
    private final Counter deadLetters;
    private final Counter failures;
    private final Counter reused;
    private final Histogram answerLatency;
    /** session -> {units, bytes} of the most recently active sessions, least recent first; task thread only. */
    private final LinkedHashMap<String, long[]> perSession = new LinkedHashMap<>(16, 0.75f, true);

    private final TreeMap<Long, Integer> sessionBytes = new TreeMap<>();
    private final TreeMap<Long, Integer> sessionUnits = new TreeMap<>();
    private long engineTokens;
    private long engineNanos;

    private volatile int sessions;
    private volatile long totalBytes;
    private volatile long totalUnits;
    private volatile long maxBytes;
    private volatile long maxUnits;
    private volatile double hitRate;
    private volatile long evictions;
    private volatile double tokensPerSecond;

    SessionMetrics(MetricGroup group, KvDType storage) {
        this(group, storage, TRACKED_SESSIONS);
    }

    /** @param tracked sessions the memory gauges cover at most */
    SessionMetrics(MetricGroup group, KvDType storage, int tracked) {
        this.storage = storage;
        this.tracked = tracked;
        tokensIngested = group.counter(TOKENS_INGESTED);
        queriesAnswered = group.counter(QUERIES_ANSWERED);
        deadLetters = group.counter(DEAD_LETTERS);
        failures = group.counter(FAILURES);
        reused = group.counter(MEMORY_REUSED);
        answerLatency = group.histogram(ANSWER_LATENCY, new DescriptiveStatisticsHistogram(LATENCY_WINDOW));
        group.gauge(SESSIONS, (Gauge<Integer>) () -> sessions);
        group.gauge(STATE_BYTES, (Gauge<Long>) () -> totalBytes);
        group.gauge(UNITS, (Gauge<Long>) () -> totalUnits);
        group.gauge(MAX_SESSION_BYTES, (Gauge<Long>) () -> maxBytes);
        group.gauge(MAX_SESSION_UNITS, (Gauge<Long>) () -> maxUnits);
        group.gauge(HIT_RATE, (Gauge<Double>) () -> hitRate);
        group.gauge(EVICTIONS, (Gauge<Long>) () -> evictions);
        group.gauge(ENGINE_TOKENS_PER_SECOND, (Gauge<Double>) () -> tokensPerSecond);
    }

    /** {@code tokens} were ingested by the engine in {@code nanos}. */
    void ingested(int tokens, long nanos) {
        tokensIngested.inc(tokens);
        engine(tokens, nanos);
    }

    /**
     * {@code answers} queries were answered by one batch that took {@code nanos} and processed {@code tokens} (prompt
     * and generated); each answer's latency is the batch's time.
     */
    void answered(int answers, long tokens, long nanos) {
        queriesAnswered.inc(answers);
        for (int i = 0; i < answers; i++) {
            answerLatency.update(nanos / 1_000_000);
        }
        engine(tokens, nanos);
    }

    void deadLetter() {
        deadLetters.inc();
    }

    /** An event whose handling failed unexpectedly (it is dead-lettered too). */
    void failure() {
        failures.inc();
    }

    private void engine(long tokens, long nanos) {
        engineTokens += tokens;
        engineNanos += nanos;
        tokensPerSecond = engineNanos == 0 ? 0 : engineTokens * 1e9 / engineNanos;
    }

    /** The session's memory is now {@code mem} (after a load or an ingest). */
    void memory(String session, KvCache mem) {
        set(session, new long[] {mem.blocks().size(), KvBlockCodec.encodedSize(mem, storage)});
    }

    /** An event started from the session's kept memory. */
    void reused() {
        reused.inc();
    }

    /** The session's memory was cleared. */
    void cleared(String session) {
        set(session, null);
    }

    private void set(String session, long[] now) {
        long[] old = now == null ? perSession.remove(session) : perSession.put(session, now);
        if (now != null && perSession.size() > tracked) {
            String eldest = perSession.keySet().iterator().next();
            set(eldest, null); // the least recently active session leaves the gauges
        }
        long units = totalUnits;
        long bytes = totalBytes;
        if (old != null) {
            units -= old[0];
            bytes -= old[1];
            decrement(sessionUnits, old[0]);
            decrement(sessionBytes, old[1]);
        }
        if (now != null) {
            units += now[0];
            bytes += now[1];
            sessionUnits.merge(now[0], 1, Integer::sum);
            sessionBytes.merge(now[1], 1, Integer::sum);
        }
        totalUnits = units;
        totalBytes = bytes;
        sessions = perSession.size();
        maxUnits = sessionUnits.isEmpty() ? 0 : sessionUnits.lastKey();
        maxBytes = sessionBytes.isEmpty() ? 0 : sessionBytes.lastKey();
    }

    private static void decrement(TreeMap<Long, Integer> counts, long key) {
        counts.computeIfPresent(key, (k, n) -> n == 1 ? null : n - 1);
    }

    /** Publishes the working set's hit rate (hits / lookups; 0 before any lookup) and evictions. */
    void workingSet(WorkingSet ws) {
        long lookups = ws.hits() + ws.misses();
        hitRate = lookups == 0 ? 0 : (double) ws.hits() / lookups;
        evictions = ws.evictions();
    }
}
