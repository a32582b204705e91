package io.engram.operators.session;

import io.engram.engine.session.Engine;
import io.engram.engine.session.SessionEngine;
import io.engram.schemas.Attribution;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.EventProvenance;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.Summary;
import io.engram.state.flink.FlinkMemoryStore;
import io.engram.state.session.SessionMemoryRepository;
import java.util.LinkedHashSet;
import java.util.Set;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.InternalTimer;
import org.apache.flink.streaming.api.operators.InternalTimerService;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.Triggerable;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.util.OutputTag;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The per-session memory operator (keyed by session): it parks, batches and dispatches. Content events go to
 * {@link ContentIngest} (chunked prefill into the session's KV memory, every token tagged with its source event, stored
 * through {@code SessionMemoryRepository}); queries are admitted by {@link QueryAdmission}, parked in keyed state
 * ({@link PendingQueries}) and answered at the latest after {@link SessionSettings#batchWindowMillis()} (a
 * processing-time timer) together with other sessions' queries in shared forward passes, a full batch of
 * {@link SessionSettings#maxBatch()} at once; an event of a session with parked queries answers them first, so every
 * query sees exactly the memory that preceded it. Control events reset or close a session or ask for its summary.
 *
 * <p>All state is keyed by session in RocksDB and checkpointed, so a restart resumes with exactly the checkpointed
 * memory; the engine ({@link Engine}) is opened in {@link #open} and closed in {@link #close}. Failures while handling
 * one session's event, bad input included, go to {@link #DEAD_LETTERS} through {@link FailureIsolation}; the job keeps
 * running and other sessions are unaffected. Other collaborators: {@link QueryBatches} (answering), {@link SessionSummaries},
 * {@link SessionRetention}, {@link IdleSessions},
 * {@link SessionRepairs}, {@link SessionPolicyStates}, {@link SessionAnswerRecords}, {@link SessionMetrics}.
 * Output tags and the timer service name stay here; state descriptors are in {@link SessionStateDescriptors}.
 *
 * <p>Threading: Flink calls the operator from the task thread only; the engine's own worker threads stay inside ops.
 */
public class SessionMemoryOperator extends AbstractStreamOperator<io.engram.schemas.Answer>
        implements OneInputStreamOperator<EngramEvent, io.engram.schemas.Answer>, Triggerable<String, VoidNamespace> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(SessionMemoryOperator.class);

    public static final OutputTag<Summary> SUMMARIES =
            new OutputTag<>("engram-summaries", new AvroTypeInfo<>(Summary.class));
    public static final OutputTag<Attribution> ATTRIBUTIONS =
            new OutputTag<>("engram-attributions", new AvroTypeInfo<>(Attribution.class));
    /** What the precise attribution tier needs for each answer (consumed by {@code PreciseAttributionOperator}). */
    public static final OutputTag<io.engram.schemas.AttributionRequest> ATTRIBUTION_REQUESTS = new OutputTag<>(
            "engram-attribution-requests", new AvroTypeInfo<>(io.engram.schemas.AttributionRequest.class));

    public static final OutputTag<DeadLetter> DEAD_LETTERS =
            new OutputTag<>("engram-session-dead-letters", new AvroTypeInfo<>(DeadLetter.class));

    private final SessionSettings settings;
    private final SessionFaults faults;

    /** The model, backend, transformer, policy and session engine this instance answers with. */
    private transient Engine engines;

    private transient SessionEngine engine;
    private transient String modelName;
    /** The sessions' KV blocks and indexes in keyed state (RocksDB in the job), with a working set of decoded blocks. */
    private transient SessionMemoryRepository repository;

    private transient HotSessions hot;
    private transient SessionFaults.Injector injector;
    private transient MapState<Integer, EventProvenance> events;
    private transient PendingQueries pending;
    private transient QueryAdmission admission;
    private transient InternalTimerService<VoidNamespace> timers;
    /** Sessions with parked queries, in arrival order (an index of the pending queries, rebuilt from timers after a restore). */
    private transient Set<String> parked;

    private transient SessionPolicyStates policyStates;
    private transient SessionSummaries summaries;
    private transient SessionRetention retention;
    private transient IdleSessions idle;
    private transient SessionAnswerRecords records;
    private transient SessionMetrics metrics;
    private transient ContentIngest ingest;
    private transient FailureIsolation isolation;
    private transient QueryBatches batches;
    private transient SessionControl control;

    public SessionMemoryOperator(SessionSettings settings) {
        this(settings, SessionFaults.NONE);
    }

    /** An operator that also raises the failures {@code faults} plans (fault-injection tests and soaks). */
    public SessionMemoryOperator(SessionSettings settings, SessionFaults faults) {
        this.settings = settings;
        this.faults = faults;
    }

    @Override
    public void open() throws Exception {
        super.open();
        engines = Engine.open(settings.engine()
                .withGpuOrdinal(TaskGpu.ordinal(settings.engine().device().device(), getRuntimeContext())));
        engine = engines.session();
        modelName = engines.config().name();
        repository = new SessionMemoryRepository(
                new FlinkMemoryStore(getKeyedStateStore(), this::getCurrentKey, this::setCurrentKey),
                new io.engram.state.cache.WorkingSet(settings.storage().workingSetBytes()),
                engines.backend(),
                engine::newMemory,
                settings.storage().kvDType(),
                modelName,
                settings.engine().blockSize(),
                engines.policy().offloadsMemory());
        metrics = new SessionMetrics(getMetricGroup(), settings.storage().kvDType());
        injector = faults.injector();
        events = getKeyedStateStore().getMapState(SessionStateDescriptors.EVENTS);
        pending = new PendingQueries(getKeyedStateStore());
        admission = new QueryAdmission(
                settings, repository, pending, getKeyedStateStore().getMapState(SessionStateDescriptors.QUERY_IDS));
        policyStates = new SessionPolicyStates(
                engines.policy(),
                getKeyedStateStore().getMapState(SessionStateDescriptors.POLICY_UNITS),
                getKeyedStateStore().getState(SessionStateDescriptors.POLICY_STATE));
        summaries = new SessionSummaries(
                engine,
                settings,
                modelName,
                engines.config().maxPositions(),
                events,
                getKeyedStateStore().getMapState(SessionStateDescriptors.EPISODE_SUMMARIES),
                s -> output.collect(SUMMARIES, new StreamRecord<>(s)));
        hot = new HotSessions(settings.storage().workingSetBytes());
        isolation = new FailureIsolation(
                repository, policyStates, hot, metrics, d -> output.collect(DEAD_LETTERS, new StreamRecord<>(d)));
        SessionRepairs repairs = new SessionRepairs(
                repository,
                getKeyedStateStore().getMapState(SessionStateDescriptors.DROPPED_UNITS),
                modelName,
                settings.engine().blockSize(),
                (e, reason) -> isolation.deadLetter(e, ErrorClass.CORRUPT_MEMORY, reason, null));
        retention = new SessionRetention(
                settings.storage().retention(),
                settings.storage().kvDType(),
                repository,
                getKeyedStateStore().getMapState(SessionStateDescriptors.DROPPED_UNITS),
                summaries);
        ingest = new ContentIngest(
                settings,
                engine,
                modelName,
                repository,
                repairs,
                policyStates,
                summaries,
                retention,
                events,
                metrics,
                injector,
                hot);
        isolation.checkWith(ingest);
        records = new SessionAnswerRecords(
                engine,
                modelName,
                settings.attribution(),
                events::get,
                settings.storage().kvDType());
        batches = new QueryBatches(
                settings,
                engine,
                pending,
                ingest,
                repository,
                isolation,
                policyStates,
                records,
                metrics,
                injector,
                admission,
                this::setCurrentKey,
                new QueryBatches.Outputs(
                        a -> output.collect(new StreamRecord<>(a)),
                        a -> output.collect(ATTRIBUTIONS, new StreamRecord<>(a)),
                        r -> output.collect(ATTRIBUTION_REQUESTS, new StreamRecord<>(r))));
        timers = getInternalTimerService("engram-query-batches", VoidNamespaceSerializer.INSTANCE, this);
        idle = new IdleSessions(settings.storage().retention().idleMillis(), getKeyedStateStore(), timers);
        parked = new LinkedHashSet<>();
        control = new SessionControl(
                repository,
                hot,
                policyStates,
                events,
                admission,
                summaries,
                retention,
                idle,
                metrics,
                ingest,
                isolation);
        LOG.info(
                "session memory operator {} ready: model {}, backend {}, memory policy {}, batches of up to {} sessions within {} ms",
                getRuntimeContext().getTaskInfo().getTaskNameWithSubtasks(),
                modelName,
                engines.backend().describe(),
                settings.engine().memory().describe(engines.config()),
                settings.batching().maxBatch(),
                settings.batching().batchWindowMillis());
    }

    @Override
    public void close() throws Exception {
        try {
            super.close();
        } finally {
            if (engines != null) {
                engines.close();
            }
        }
    }

    @Override
    public void processElement(StreamRecord<EngramEvent> record) throws Exception {
        EngramEvent event = record.getValue();
        String session = event.getSessionId();
        idle.touch(getProcessingTimeService().getCurrentProcessingTime());
        if (event.getPayload() instanceof QueryEvent q) {
            if (isolation.guarded(event, () -> admission.admit(event, q))) {
                parked.add(session);
                if (parked.size() >= settings.batching().maxBatch()
                        || settings.batching().batchWindowMillis() == 0) {
                    flush();
                } else {
                    timers.registerProcessingTimeTimer(
                            VoidNamespace.INSTANCE,
                            getProcessingTimeService().getCurrentProcessingTime()
                                    + settings.batching().batchWindowMillis());
                }
            }
            return;
        }
        if (parked.contains(session) || pending.size() > 0) {
            flush(); // answer parked queries before this session's memory changes
            setCurrentKey(session);
        }
        isolation.guarded(event, () -> {
            switch (event.getPayload()) {
                case ContentEvent c -> ingest.ingest(event, c);
                case ControlEvent c -> control.apply(event, c);
                default ->
                    throw new BadInput(
                            ErrorClass.UNSUPPORTED,
                            "payload type " + event.getPayload().getClass().getSimpleName() + " is not handled");
            }
        });
    }

    @Override
    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        if (idle.expired(timer.getTimestamp())) {
            control.expireIdle(timer.getKey(), timer.getTimestamp());
        }
        parked.add(
                timer.getKey()); // after a restore the index is empty; the timer says this session has parked queries
        flush();
    }

    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) {
        // no event-time timers are registered
    }

    /** Answers every parked query ({@link QueryBatches#flush}). */
    private void flush() throws Exception {
        batches.flush(parked);
    }
}
