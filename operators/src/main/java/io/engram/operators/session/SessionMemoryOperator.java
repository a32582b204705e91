package io.engram.operators.session;

import io.engram.engine.backend.Backend;
import io.engram.engine.backend.Backends;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.generate.SamplingOptions;
import io.engram.engine.generate.TokenListener;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.model.ModelRegistry;
import io.engram.engine.model.Transformer;
import io.engram.engine.session.Answer;
import io.engram.engine.session.PromptFormat;
import io.engram.engine.session.SessionEngine;
import io.engram.operators.DeadLetters;
import io.engram.schemas.Attribution;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.EventProvenance;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SessionIndex;
import io.engram.schemas.Summary;
import io.engram.state.codec.CorruptMemoryException;
import io.engram.state.codec.KvBlockCodec;
import io.engram.state.flink.FlinkMemoryStore;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
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
 * The per-session memory operator (keyed by session). Content events are ingested into the session's KV memory through the engine
 * (chunked prefill, every token tagged with its source event); queries are answered over everything the session has
 * ingested, with citations to the source events; control events reset the session or request a summary.
 *
 * <p>State (all keyed by session, in RocksDB): the session index, the KV blocks (encoded by {@link KvBlockCodec}) and
 * the provenance of every ingested event. The engine's caches are rebuilt from this state, so a restart from a
 * checkpoint resumes with exactly the memory that was checkpointed. The engine (weights shared per JVM through
 * {@link ModelRegistry}) is acquired in {@link #open} and released in {@link #close}.
 *
 * <p>Batching across sessions: a query is parked in the session's keyed state ({@link #PENDING}) and answered at the
 * latest after {@link SessionSettings#batchWindowMillis()} (a processing-time timer), together with the queries of
 * other sessions parked meanwhile, in shared forward passes ({@link SessionEngine#answerBatch}); a full batch of
 * {@link SessionSettings#maxBatch()} sessions is answered at once. An event of a session with a parked query first
 * answers the parked queries, so every query sees exactly the memory that preceded it in its session. Parked queries
 * and their timers are checkpointed with the keyed state; the in-memory set of parked sessions is only an index.
 *
 * <p>Bad input (an empty text, a query for a session with no memory, memory that fails its checks) goes to
 * {@link #DEAD_LETTERS} with the reason; the job keeps running and other sessions are unaffected.
 *
 * <p>Metrics (counters, answer latency, memory and working-set gauges) go to the operator's metric group through
 * {@link SessionMetrics}.
 *
 * <p>The operator coordinates: it parks, batches and answers queries, ingests content and keeps the index, blocks and
 * provenance. Its collaborators, built in {@link #open} over its keyed state, do the rest for the current key:
 * {@link SessionSummaries} (episode and session summaries), {@link SessionRetention} (the memory cap),
 * {@link SessionPolicyStates} (the memory policy's state between events) and {@link SessionAnswerRecords} (answer and
 * attribution records). State descriptors, the timer service name and output tags stay here: savepoints depend on them.
 *
 * <p>Threading: Flink calls the operator from the task thread only; the engine's own worker threads stay inside ops.
 */
public class SessionMemoryOperator extends AbstractStreamOperator<io.engram.schemas.Answer>
        implements OneInputStreamOperator<EngramEvent, io.engram.schemas.Answer>, Triggerable<String, VoidNamespace> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(SessionMemoryOperator.class);

    public static final OutputTag<Summary> SUMMARIES = new OutputTag<>("engram-summaries", new AvroTypeInfo<>(Summary.class));
    public static final OutputTag<Attribution> ATTRIBUTIONS =
            new OutputTag<>("engram-attributions", new AvroTypeInfo<>(Attribution.class));
    /** What the precise attribution tier needs for each answer (consumed by {@code PreciseAttributionOperator}). */
    public static final OutputTag<io.engram.schemas.AttributionRequest> ATTRIBUTION_REQUESTS = new OutputTag<>(
            "engram-attribution-requests", new AvroTypeInfo<>(io.engram.schemas.AttributionRequest.class));
    public static final OutputTag<DeadLetter> DEAD_LETTERS =
            new OutputTag<>("engram-session-dead-letters", new AvroTypeInfo<>(DeadLetter.class));

    static final MapStateDescriptor<Integer, EventProvenance> EVENTS =
            new MapStateDescriptor<>("engram-event-provenance", Types.INT, new AvroTypeInfo<>(EventProvenance.class));
    static final MapStateDescriptor<Long, io.engram.schemas.DroppedUnit> DROPPED_UNITS =
            io.engram.state.flink.PolicyStateDescriptors.DROPPED_UNITS;
    static final MapStateDescriptor<Integer, io.engram.schemas.MemoryUnit> POLICY_UNITS =
            io.engram.state.flink.PolicyStateDescriptors.POLICY_UNITS;
    static final org.apache.flink.api.common.state.ValueStateDescriptor<io.engram.schemas.PolicyState> POLICY_STATE =
            io.engram.state.flink.PolicyStateDescriptors.POLICY_STATE;
    /** The session's episode summaries by first memory token: what a session summary is built from. */
    static final MapStateDescriptor<Long, Summary> EPISODE_SUMMARIES =
            new MapStateDescriptor<>("engram-episode-summaries", Types.LONG, new AvroTypeInfo<>(Summary.class));
    /** Queries of the session waiting for the next batch, in arrival order. */
    static final ListStateDescriptor<EngramEvent> PENDING =
            new ListStateDescriptor<>("engram-pending-queries", new AvroTypeInfo<>(EngramEvent.class));

    private final SessionSettings settings;

    private transient ModelRegistry.Lease model;
    private transient Backend backend;
    private transient SessionEngine engine;
    private transient String modelName;
    /** The session's KV blocks and index, in keyed state (RocksDB in the job). */
    private transient FlinkMemoryStore store;
    /** Decoded blocks of this slot's sessions, LRU within the configured bytes; the store stays the truth. */
    private transient io.engram.state.cache.WorkingSet workingSet;
    private transient MapState<Integer, EventProvenance> events;
    private transient ListState<EngramEvent> pending;
    private transient InternalTimerService<VoidNamespace> timers;
    /** Sessions with parked queries, in arrival order (an index of PENDING, rebuilt from timers after a restore). */
    private transient Set<String> parked;
    /** CRC32C of the blocks of the memory last loaded (see {@link io.engram.schemas.MemoryStats#getFingerprint}). */
    private transient String lastFingerprint;
    private transient SessionPolicyStates policyStates;
    private transient SessionSummaries summaries;
    private transient SessionRetention retention;
    private transient SessionAnswerRecords records;
    private transient SessionMetrics metrics;

    public SessionMemoryOperator(SessionSettings settings) {
        this.settings = settings;
    }

    @Override
    public void open() throws Exception {
        super.open();
        model = ModelRegistry.acquire(Path.of(settings.modelDir()));
        backend = Backends.open(settings.device(), gpuOrdinal(), settings.threads(), false);
        EngineSettings es = new EngineSettings(settings.blockSize(), settings.prefillChunk(), settings.threads(), false);
        Transformer t = new Transformer(model.model().config(), model.model().weights(), backend, es);
        io.engram.engine.memory.MemoryPolicy policy = settings.memory().create(model.model().config(), Path.of(settings.modelDir()));
        engine = new SessionEngine(t, model.tokenizer(), policy, PromptFormat.PLAIN, settings.attribution().segmentWords(),
                retrievalHeads(policy));
        modelName = model.model().config().name();
        store = new FlinkMemoryStore(getKeyedStateStore(), this::getCurrentKey);
        workingSet = new io.engram.state.cache.WorkingSet(settings.workingSetBytes());
        events = getKeyedStateStore().getMapState(EVENTS);
        pending = getKeyedStateStore().getListState(PENDING);
        policyStates = new SessionPolicyStates(policy, getKeyedStateStore().getMapState(POLICY_UNITS),
                getKeyedStateStore().getState(POLICY_STATE));
        summaries = new SessionSummaries(engine, settings, modelName, model.model().config().maxPositions(), events,
                getKeyedStateStore().getMapState(EPISODE_SUMMARIES), s -> output.collect(SUMMARIES, new StreamRecord<>(s)));
        retention = new SessionRetention(settings.retention(), settings.kvStorage(), store, workingSet,
                getKeyedStateStore().getMapState(DROPPED_UNITS), summaries);
        records = new SessionAnswerRecords(engine, modelName, settings.attribution(), events::get);
        timers = getInternalTimerService("engram-query-batches", VoidNamespaceSerializer.INSTANCE, this);
        parked = new LinkedHashSet<>();
        metrics = new SessionMetrics(getMetricGroup(), settings.kvStorage());
        LOG.info("session memory operator {} ready: model {}, backend {}, memory policy {}, batches of up to {} sessions within {} ms",
                getRuntimeContext().getTaskInfo().getTaskNameWithSubtasks(), modelName, backend.describe(),
                settings.memory().describe(), settings.maxBatch(), settings.batchWindowMillis());
    }

    /**
     * The heads whose attention the fast attribution tier counts: DuoAttention's retrieval heads when it runs, else
     * those of a calibrated head pattern next to the model ({@code engram calibrate-heads}) at the configured sparsity,
     * else every head.
     */
    private io.engram.engine.memory.duo.HeadPattern retrievalHeads(io.engram.engine.memory.MemoryPolicy policy) {
        if (policy instanceof io.engram.engine.memory.duo.DuoAttention duo) {
            return duo.pattern();
        }
        Path file = Path.of(settings.modelDir()).resolve(io.engram.engine.memory.duo.HeadPattern.FILE_NAME);
        if (!java.nio.file.Files.isRegularFile(file)) {
            return null;
        }
        var c = model.model().config();
        return io.engram.engine.memory.duo.HeadPattern.bySparsity(io.engram.engine.memory.duo.HeadPattern.read(file, c.layers(),
                c.kvHeads()), settings.memory().duoSparsity());
    }

    /**
     * The GPU Flink's GPU external resource assigned this task manager (its first "index"), or 0 without one. Every
     * slot of the task manager gets the same device and shares its weights (one engine per task manager GPU).
     */
    private int gpuOrdinal() {
        if (settings.device().device() == Backends.Device.CPU) {
            return 0;
        }
        for (org.apache.flink.api.common.externalresource.ExternalResourceInfo info
                : getRuntimeContext().getExternalResourceInfos("gpu")) {
            java.util.Optional<String> index = info.getProperty("index");
            if (index.isPresent()) {
                return Integer.parseInt(index.get().strip());
            }
        }
        return 0;
    }

    @Override
    public void close() throws Exception {
        try {
            super.close();
        } finally {
            if (backend != null) {
                backend.close();
            }
            if (model != null) {
                model.close();
            }
        }
    }

    @Override
    public void processElement(StreamRecord<EngramEvent> record) throws Exception {
        EngramEvent event = record.getValue();
        String session = event.getSessionId();
        if (event.getPayload() instanceof QueryEvent q) {
            if (guarded(event, () -> validateQuery(event, q))) {
                pending.add(event);
                parked.add(session);
                if (parked.size() >= settings.maxBatch() || settings.batchWindowMillis() == 0) {
                    flush();
                } else {
                    timers.registerProcessingTimeTimer(VoidNamespace.INSTANCE,
                            getProcessingTimeService().getCurrentProcessingTime() + settings.batchWindowMillis());
                }
            }
            return;
        }
        if (parked.contains(session) || !queued().isEmpty()) {
            flush(); // answer parked queries before this session's memory changes
            setCurrentKey(session);
        }
        guarded(event, () -> {
            switch (event.getPayload()) {
                case ContentEvent c -> ingest(event, c);
                case ControlEvent c -> control(event, c);
                default -> throw new BadInput(ErrorClass.UNSUPPORTED,
                        "payload type " + event.getPayload().getClass().getSimpleName() + " is not handled");
            }
        });
    }

    /** The current session's parked queries, in order. */
    private List<EngramEvent> queued() throws Exception {
        List<EngramEvent> out = new ArrayList<>();
        Iterable<EngramEvent> it = pending.get();
        if (it != null) {
            it.forEach(out::add);
        }
        return out;
    }

    @Override
    public void onProcessingTime(InternalTimer<String, VoidNamespace> timer) throws Exception {
        parked.add(timer.getKey()); // after a restore the index is empty; the timer says this session has parked queries
        flush();
    }

    @Override
    public void onEventTime(InternalTimer<String, VoidNamespace> timer) {
        // no event-time timers are registered
    }

    /** Work on one event whose failure from bad input or damaged memory becomes a dead letter. */
    @FunctionalInterface
    private interface EventWork {
        void run() throws Exception;
    }

    /** Runs {@code work}; on bad input or damaged memory emits a dead letter for {@code event}. @return whether it succeeded */
    private boolean guarded(EngramEvent event, EventWork work) throws Exception {
        try {
            work.run();
            return true;
        } catch (BadInput e) {
            metrics.deadLetter();
            output.collect(DEAD_LETTERS, new StreamRecord<>(DeadLetters.forEvent(event, e.errorClass, e.getMessage())));
        } catch (CorruptMemoryException e) {
            workingSet.invalidate(event.getSessionId());
            policyStates.forget(event.getSessionId());
            LOG.error("session {}: stored memory failed its checks: {}", event.getSessionId(), e.getMessage());
            metrics.deadLetter();
            output.collect(DEAD_LETTERS, new StreamRecord<>(DeadLetters.forEvent(event, ErrorClass.INVALID_EVENT,
                    "the session's stored memory is damaged and was not used: " + e.getMessage())));
        }
        return false;
    }

    /**
     * Answers the parked queries: the first parked query of every parked session in one batch, then the next ones,
     * until none is left. Each query runs over its session's memory as stored.
     */
    private void flush() throws Exception {
        while (!parked.isEmpty()) {
            List<String> sessions = new ArrayList<>(parked);
            List<EngramEvent> batchEvents = new ArrayList<>();
            List<SessionEngine.Query> batch = new ArrayList<>();
            List<KvCache> memories = new ArrayList<>();
            List<String> fingerprints = new ArrayList<>();
            for (String s : sessions) {
                setCurrentKey(s);
                List<EngramEvent> queue = queued();
                if (queue.isEmpty()) {
                    parked.remove(s);
                    continue;
                }
                EngramEvent e = queue.get(0);
                KvCache mem;
                try {
                    mem = load(s, store.getIndex(s));
                } catch (CorruptMemoryException | BadInput ex) {
                    pending.update(queue.subList(1, queue.size()));
                    guarded(e, () -> {
                        throw ex;
                    });
                    continue;
                }
                batchEvents.add(e);
                memories.add(mem);
                fingerprints.add(lastFingerprint);
                batch.add(new SessionEngine.Query(mem, ((QueryEvent) e.getPayload()).getQuestion(),
                        sampling(((QueryEvent) e.getPayload()).getOptions()), TokenListener.NONE));
                if (batch.size() == settings.maxBatch()) {
                    break;
                }
            }
            if (batch.isEmpty()) {
                continue;
            }
            long t0 = System.nanoTime();
            List<Answer> answers = engine.answerBatch(batch);
            long t1 = System.nanoTime();
            long batchTokens = 0;
            for (Answer a : answers) {
                batchTokens += a.generation().promptTokens() + a.generation().tokens().length;
            }
            metrics.answered(answers.size(), batchTokens, t1 - t0);
            for (int i = 0; i < batch.size(); i++) {
                EngramEvent e = batchEvents.get(i);
                setCurrentKey(e.getSessionId());
                policyStates.remember(e.getSessionId(), memories.get(i));
                List<EngramEvent> queue = queued();
                pending.update(queue.subList(1, queue.size()));
                if (queue.size() == 1) {
                    parked.remove(e.getSessionId());
                }
                output.collect(new StreamRecord<>(records.answer(e, answers.get(i), memories.get(i), fingerprints.get(i),
                        (t1 - t0) / 1_000_000)));
                attribute(e, answers.get(i), memories.get(i), (t1 - t0) / 1_000_000);
            }
        }
    }

    /** Input that cannot be used; becomes a dead letter. */
    private static final class BadInput extends RuntimeException {
        final ErrorClass errorClass;

        BadInput(ErrorClass errorClass, String message) {
            super(message);
            this.errorClass = errorClass;
        }
    }

    private void ingest(EngramEvent event, ContentEvent c) throws Exception {
        if (c.getText() == null || c.getText().isBlank()) {
            throw new BadInput(ErrorClass.INVALID_EVENT, "content event has no text");
        }
        SessionIndex idx = store.getIndex(event.getSessionId());
        KvCache mem = idx == null ? newMemory(event.getSessionId()) : load(event.getSessionId(), idx);
        int eventIndex = idx == null ? 0 : idx.getEventCount();
        long firstSeq = mem.nextSeq();
        long t0 = System.nanoTime();
        SessionEngine.Ingested in = engine.ingest(mem, c.getText(), eventIndex);
        metrics.ingested(in.tokens(), System.nanoTime() - t0);
        String session = event.getSessionId();
        java.util.Map<Long, Integer> crcs = new java.util.HashMap<>();
        if (idx != null) {
            for (int i = 0; i < idx.getBlockCrcs().size(); i++) {
                crcs.put(idx.getBlockIds().get(i), idx.getBlockCrcs().get(i));
            }
        }
        for (KvBlock b : in.touchedBlocks()) {
            for (int l = 0; l < b.layers(); l++) {
                mem.ensureResident(b, l); // layers the policy offloaded during this event come back to be stored
            }
            byte[] bytes = KvBlockCodec.encode(b, backend, mem.kvDim(), settings.kvStorage());
            store.putUnit(session, b.id(), bytes);
            crcs.put(b.id(), KvBlockCodec.checksum(bytes));
            // the working set holds exactly what was stored (e.g. BF16-rounded), so warm and restored runs agree
            workingSet.put(session, b.id(), KvBlockCodec.decode(bytes, engine.newMemory(), backend, "session " + session + " block " + b.id()),
                    bytes.length);
        }
        events.put(eventIndex, EventProvenance.newBuilder().setEventId(event.getEventId()).setSource(event.getSource())
                .setFirstSeq(firstSeq).setTokenCount(in.tokens()).setCharLength(c.getText().length()).build());
        List<Long> ids = new ArrayList<>();
        List<Integer> blockCrcs = new ArrayList<>();
        for (KvBlock b : mem.blocks()) {
            ids.add(b.id());
            blockCrcs.add(crcs.get(b.id()));
        }
        SessionIndex updated = SessionIndex.newBuilder().setSessionId(event.getSessionId()).setNextSeq(mem.nextSeq()).setBlockIds(ids)
                .setBlockCrcs(blockCrcs)
                .setEventCount(eventIndex + 1).setModel(modelName).setBlockSize(settings.blockSize())
                .setSummarizedEvents(idx == null ? 0 : idx.getSummarizedEvents())
                .setSummarizedSeq(idx == null ? 0 : idx.getSummarizedSeq())
                .setDroppedTokens(idx == null ? 0 : idx.getDroppedTokens())
                .setDroppedUnits(idx == null ? 0 : idx.getDroppedUnits()).build();
        summaries.afterIngest(event, mem, updated, eventIndex);
        retention.apply(event, mem, updated, crcs);
        store.putIndex(event.getSessionId(), updated);
        metrics.memory(session, mem);
        policyStates.remember(session, mem);
    }

    private KvCache newMemory(String session) {
        KvCache mem = engine.newMemory();
        mem.unitStore(new StoredUnitStore(session, store, backend, mem));
        return mem;
    }

    private KvCache load(String session, SessionIndex idx) throws Exception {
        if (!idx.getSessionId().equals(session)) {
            throw new CorruptMemoryException("index of session " + idx.getSessionId() + " found under key " + session);
        }
        if (!idx.getModel().equals(modelName) || idx.getBlockSize() != settings.blockSize()) {
            throw new BadInput(ErrorClass.UNSUPPORTED, "session memory was built with model %s (block %d); this job runs %s (block %d)"
                    .formatted(idx.getModel(), idx.getBlockSize(), modelName, settings.blockSize()));
        }
        KvCache mem = newMemory(session);
        List<Long> ids = idx.getBlockIds();
        if (idx.getBlockCrcs().size() != ids.size()) {
            throw new CorruptMemoryException("session " + session + ": index lists " + ids.size() + " blocks but "
                    + idx.getBlockCrcs().size() + " checksums");
        }
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        for (int i = 0; i < ids.size(); i++) {
            long id = ids.get(i);
            KvBlock b = workingSet.get(session, id);
            if (b == null) {
                byte[] bytes = store.getUnit(session, id);
                if (bytes == null) {
                    throw new CorruptMemoryException("session " + session + ": block " + id + " is listed in the index but missing");
                }
                if (KvBlockCodec.checksum(bytes) != idx.getBlockCrcs().get(i)) {
                    throw new CorruptMemoryException("session " + session + ": block " + id + " is not the version the index lists");
                }
                b = KvBlockCodec.decode(bytes, mem, backend, "session " + session + " block " + id);
                workingSet.put(session, id, b, bytes.length);
            }
            mem.attach(b);
            crc.update(java.nio.ByteBuffer.allocate(4).putInt(idx.getBlockCrcs().get(i)).array());
        }
        mem.resumeAt(idx.getNextSeq());
        policyStates.adopt(session, idx.getNextSeq(), mem);
        metrics.memory(session, mem);
        metrics.workingSet(workingSet);
        lastFingerprint = "%08x".formatted(crc.getValue());
        return mem;
    }

    private SamplingOptions sampling(GenerationOptions o) {
        int max = o == null || o.getMaxNewTokens() <= 0 ? Math.min(64, settings.maxNewTokensCap())
                : Math.min(o.getMaxNewTokens(), settings.maxNewTokensCap());
        SamplingOptions s = SamplingOptions.greedy(max);
        if (o == null) {
            return s;
        }
        if (o.getTemperature() > 0) {
            s = s.withSampling(o.getTemperature(), o.getTopK() == null ? 0 : o.getTopK(), o.getTopP() == null ? 1.0 : o.getTopP(),
                    o.getSeed() == null ? 0 : o.getSeed());
        }
        return o.getStop() == null || o.getStop().isEmpty() ? s : s.withStops(List.of(), List.copyOf(o.getStop()));
    }

    private void validateQuery(EngramEvent event, QueryEvent q) throws Exception {
        if (store.getIndex(event.getSessionId()) == null) {
            throw new BadInput(ErrorClass.UNKNOWN_SESSION, "query " + q.getQueryId() + " for session " + event.getSessionId()
                    + ", which has no memory (no content was ingested, or it was reset)");
        }
        if (q.getQuestion() == null || q.getQuestion().isBlank()) {
            throw new BadInput(ErrorClass.INVALID_EVENT, "query " + q.getQueryId() + " has no question");
        }
        try {
            sampling(q.getOptions());
        } catch (IllegalArgumentException e) {
            throw new BadInput(ErrorClass.INVALID_EVENT, "query " + q.getQueryId() + ": " + e.getMessage());
        }
    }

    /**
     * The answer's attribution records: FAST now (its scores came with the answer), and a request for the PRECISE
     * tier, which runs downstream so the answer never waits for it.
     */
    private void attribute(EngramEvent e, Answer a, KvCache mem, long elapsedMs) throws Exception {
        Attribution fast = records.fast(e, a, elapsedMs);
        if (fast != null) {
            output.collect(ATTRIBUTIONS, new StreamRecord<>(fast));
        }
        io.engram.schemas.AttributionRequest request = records.request(e, a, mem);
        if (request != null) {
            output.collect(ATTRIBUTION_REQUESTS, new StreamRecord<>(request));
        }
    }

    private void control(EngramEvent event, ControlEvent c) throws Exception {
        switch (c.getAction()) {
            case RESET, CLOSE_SESSION -> {
                store.clear(event.getSessionId());
                workingSet.invalidate(event.getSessionId());
                policyStates.clear(event.getSessionId());
                events.clear();
                pending.clear();
                summaries.clear();
                retention.clear();
                metrics.cleared(event.getSessionId());
                LOG.info("session {}: memory cleared ({})", event.getSessionId(), c.getAction());
            }
            case REQUEST_SUMMARY -> summarize(event);
            default -> throw new BadInput(ErrorClass.UNSUPPORTED, "control action " + c.getAction() + " is not supported");
        }
    }

    /** A SESSION summary on request (see {@link SessionSummaries#session}). */
    private void summarize(EngramEvent event) throws Exception {
        String session = event.getSessionId();
        SessionIndex idx = store.getIndex(session);
        if (idx == null) {
            throw new BadInput(ErrorClass.UNKNOWN_SESSION, "summary requested for session " + session + ", which has no memory");
        }
        summaries.session(event, load(session, idx), idx);
    }
}
