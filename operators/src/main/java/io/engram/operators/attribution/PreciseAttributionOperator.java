package io.engram.operators.attribution;

import io.engram.engine.attribution.PreciseTier;
import io.engram.engine.attribution.Segment;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Transformer;
import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionCandidate;
import io.engram.schemas.AttributionMethod;
import io.engram.schemas.AttributionRequest;
import io.engram.schemas.AttributionStatus;
import io.engram.schemas.SourceSegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The precise attribution tier as its own keyed operator (by session), downstream of the session memory operator:
 * TracLLM's informed search ({@link PreciseTier}) over the candidates an {@link AttributionRequest} carries, emitting a
 * PRECISE {@link Attribution} linked to the answer by query id.
 *
 * <p>Why this shape. A search costs from tens to thousands of forwards, seconds to minutes: run inside the session
 * operator it would hold back every answer of the task behind it. As a separate operator after a keyBy it runs in its
 * own task thread, so answers never wait for it. Within its task it must not block for long either (checkpoint
 * barriers queue behind a running call, and other sessions' requests wait), so it works in slices: a processing-time
 * timer per session runs the search for at most {@link AttributionSettings#sliceMillis()} (at least one value), keeps
 * every value computed in keyed state ({@link #VALUES}), and sets the next timer. The search is deterministic, so the
 * next slice runs it again over the kept values and continues where it stopped. An async function (AsyncDataStream)
 * was the alternative; it would need threads of our own running the engine beside the task thread, and its in-flight
 * requests are re-run from scratch after a restore, while here a restore resumes from the checkpointed values and
 * timers. Output goes through the job's transactional Kafka sink, so a request answered before a failure but after the
 * last checkpoint is searched again (from the checkpointed values) and emitted once.
 *
 * <p>State per session: the queue of requests ({@link #QUEUE}, the head is being searched), the head's values and its
 * compute time so far; all cleared when the head finishes. Requests of one session run in arrival order.
 *
 * <p>Backlog. The queue holds at most {@link AttributionSettings#maxPending()} requests (the head included). When
 * answers come faster than searches finish, a request that finds the queue full is not queued: a PRECISE record with
 * status {@link AttributionStatus#SKIPPED_BACKLOG} and no segments is emitted for its query at once, a warning is
 * logged and {@value #SKIPPED_BACKLOG_METRIC} counts it. So state and the delay of a session's records stay bounded,
 * and a reader waiting for the query's PRECISE record (engram explain, the web view) gets one either way. A queue that
 * is longer after a restore with a smaller limit is worked off; new requests are skipped until it is below the limit.
 */
public class PreciseAttributionOperator extends KeyedProcessFunction<String, AttributionRequest, Attribution> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(PreciseAttributionOperator.class);
    /** Counter on the operator's metric group: requests answered SKIPPED_BACKLOG since the task started. */
    public static final String SKIPPED_BACKLOG_METRIC = "preciseSkippedBacklog";

    static final ListStateDescriptor<AttributionRequest> QUEUE =
            new ListStateDescriptor<>("engram-attribution-queue", new AvroTypeInfo<>(AttributionRequest.class));
    /** Values {@code v(S)} of the head request computed so far, by subset key (see {@code Memo.key}). */
    static final MapStateDescriptor<String, Double> VALUES =
            new MapStateDescriptor<>("engram-attribution-values", Types.STRING, Types.DOUBLE);

    static final ValueStateDescriptor<Long> SPENT_NANOS =
            new ValueStateDescriptor<>("engram-attribution-spent-nanos", Types.LONG);

    private final io.engram.engine.session.Engine.Spec spec;
    private final AttributionSettings attribution;

    private transient io.engram.engine.session.Engine engine;
    private transient Transformer transformer;
    private transient MemoryPolicy policy;
    private transient String modelName;
    private transient ListState<AttributionRequest> queue;
    private transient MapState<String, Double> values;
    private transient ValueState<Long> spent;
    private transient Counter skippedBacklog;

    /** @param spec the engine, as the session operator's (its GPU is resolved where it opens) */
    public PreciseAttributionOperator(io.engram.engine.session.Engine.Spec spec, AttributionSettings attribution) {
        this.spec = spec;
        this.attribution = attribution;
    }

    @Override
    public void open(OpenContext ctx) throws Exception {
        // the same device as the session operator (its GPU, or the CPU): one engine factory for both
        engine = io.engram.engine.session.Engine.open(spec.withGpuOrdinal(gpuOrdinal()));
        transformer = engine.transformer();
        policy = engine.policy();
        modelName = engine.config().name();
        queue = getRuntimeContext().getListState(QUEUE);
        values = getRuntimeContext().getMapState(VALUES);
        spent = getRuntimeContext().getState(SPENT_NANOS);
        skippedBacklog = getRuntimeContext().getMetricGroup().counter(SKIPPED_BACKLOG_METRIC);
        AttributionSettings a = attribution;
        LOG.info(
                "precise attribution ready: model {}, top-{} of at most {} candidates ({} tokens), {} permutations, slices of {} ms, "
                        + "at most {} pending requests per session",
                modelName,
                a.topK(),
                a.maxCandidates(),
                a.maxContextTokens(),
                a.permutations(),
                a.sliceMillis(),
                a.maxPending());
    }

    /** The GPU Flink assigned this task manager (its first "index"), or 0 on the CPU or without one. */
    private int gpuOrdinal() {
        if (spec.device().device() == io.engram.engine.backend.Backends.Device.CPU) {
            return 0;
        }
        for (org.apache.flink.api.common.externalresource.ExternalResourceInfo info :
                getRuntimeContext().getExternalResourceInfos("gpu")) {
            java.util.Optional<String> index = info.getProperty("index");
            if (index.isPresent()) {
                return Integer.parseInt(index.get().strip());
            }
        }
        return 0;
    }

    @Override
    public void close() throws Exception {
        if (engine != null) {
            engine.close();
        }
    }

    @Override
    public void processElement(AttributionRequest r, Context ctx, Collector<Attribution> out) throws Exception {
        int pending = 0;
        for (AttributionRequest ignored : queue.get()) {
            pending++;
        }
        int max = attribution.maxPending();
        if (pending >= max) {
            skippedBacklog.inc();
            LOG.warn(
                    "session {} query {}: {} precise attribution requests are already pending (engram.attribution.max-pending "
                            + "is {}); this one is not searched, its PRECISE record says SKIPPED_BACKLOG",
                    r.getSessionId(),
                    r.getQueryId(),
                    pending,
                    max);
            out.collect(record(r, List.of(), 0, AttributionStatus.SKIPPED_BACKLOG));
            return;
        }
        queue.add(r);
        if (pending == 0) {
            ctx.timerService().registerProcessingTimeTimer(ctx.timerService().currentProcessingTime());
        }
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Attribution> out) throws Exception {
        List<AttributionRequest> pending = new ArrayList<>();
        queue.get().forEach(pending::add);
        if (pending.isEmpty()) {
            return;
        }
        AttributionRequest head = pending.get(0);
        Attribution done = work(head);
        if (done != null) {
            out.collect(done);
            values.clear();
            spent.clear();
            queue.update(pending.subList(1, pending.size()));
        }
        if (done == null || pending.size() > 1) {
            // yield: other sessions' timers, records and checkpoint barriers go first
            ctx.timerService().registerProcessingTimeTimer(ctx.timerService().currentProcessingTime() + 1);
        }
    }

    /** One slice of the head request's search; the attribution when it finished, else null. */
    private Attribution work(AttributionRequest r) throws Exception {
        long t0 = System.nanoTime();
        long before = spent.value() == null ? 0 : spent.value();
        if (!r.getModel().equals(modelName)
                || r.getAnswerTokens().isEmpty()
                || r.getCandidates().isEmpty()) {
            if (!r.getModel().equals(modelName)) {
                LOG.warn(
                        "session {} query {}: the answer was made by model {} but this job runs {}; no precise attribution",
                        r.getSessionId(),
                        r.getQueryId(),
                        r.getModel(),
                        modelName);
            }
            return record(r, List.of(), 0, AttributionStatus.COMPLETE);
        }
        List<Segment> candidates = new ArrayList<>();
        for (AttributionCandidate c : r.getCandidates()) {
            SourceSegment s = c.getSegment();
            candidates.add(new Segment(
                    c.getSegmentIndex(),
                    c.getEventIndex(),
                    s.getCharStart(),
                    s.getCharEnd(),
                    c.getFirstSeq(),
                    AnswerRecords.ints(c.getTokens())));
        }
        Map<String, Double> known = new HashMap<>();
        for (Map.Entry<String, Double> e : values.entries()) {
            known.put(e.getKey(), e.getValue());
        }
        long deadline = t0 + attribution.sliceMillis() * 1_000_000L;
        int[] computed = {0};
        PreciseTier.Outcome o = PreciseTier.attempt(
                transformer,
                policy,
                AnswerRecords.ints(r.getPreambleTokens()),
                candidates,
                AnswerRecords.ints(r.getQuestionTokens()),
                AnswerRecords.ints(r.getAnswerTokens()),
                attribution.search(r.getQueryId()),
                known,
                () -> computed[0]++ == 0 || System.nanoTime() < deadline);
        values.putAll(o.added());
        long total = before + System.nanoTime() - t0;
        if (!o.finished()) {
            spent.update(total);
            return null;
        }
        List<SourceSegment> segs = new ArrayList<>();
        for (PreciseTier.Cited c : o.top()) {
            AttributionCandidate src = r.getCandidates().stream()
                    .filter(x -> x.getSegmentIndex() == c.segment().index())
                    .findFirst()
                    .orElseThrow();
            segs.add(SourceSegment.newBuilder(src.getSegment())
                    .setScore(c.score())
                    .setRank(segs.size() + 1)
                    .build());
        }
        LOG.debug(
                "session {} query {}: precise attribution over {} candidates in {} ms ({} values)",
                r.getSessionId(),
                r.getQueryId(),
                candidates.size(),
                total / 1_000_000,
                known.size() + o.added().size());
        return record(r, segs, total / 1_000_000, AttributionStatus.COMPLETE);
    }

    private static Attribution record(
            AttributionRequest r, List<SourceSegment> segments, long elapsedMs, AttributionStatus status) {
        return Attribution.newBuilder()
                .setSessionId(r.getSessionId())
                .setQueryId(r.getQueryId())
                .setMethod(AttributionMethod.PRECISE)
                .setSegments(segments)
                .setElapsedMs(elapsedMs)
                .setCreatedAtMs(r.getCreatedAtMs())
                .setStatus(status)
                .build();
    }

    /** Requests answered SKIPPED_BACKLOG by this instance (the {@value #SKIPPED_BACKLOG_METRIC} counter). */
    long skippedBacklog() {
        return skippedBacklog.getCount();
    }
}
