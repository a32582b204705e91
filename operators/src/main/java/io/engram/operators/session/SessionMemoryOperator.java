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
import io.engram.engine.session.Citation;
import io.engram.engine.session.PromptFormat;
import io.engram.engine.session.Provenance;
import io.engram.engine.session.SessionEngine;
import io.engram.operators.DeadLetters;
import io.engram.schemas.AnswerTimings;
import io.engram.schemas.Attribution;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.EventProvenance;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.MemoryStats;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SessionIndex;
import io.engram.schemas.SourceSegment;
import io.engram.schemas.Summary;
import io.engram.schemas.SummaryKind;
import io.engram.state.codec.CorruptMemoryException;
import io.engram.state.codec.KvBlockCodec;
import io.engram.state.flink.FlinkMemoryStore;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
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
 * <p>Threading: Flink calls the operator from the task thread only; the engine's own worker threads stay inside ops.
 */
public class SessionMemoryOperator extends AbstractStreamOperator<io.engram.schemas.Answer>
        implements OneInputStreamOperator<EngramEvent, io.engram.schemas.Answer>, Triggerable<String, VoidNamespace> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(SessionMemoryOperator.class);

    public static final OutputTag<Summary> SUMMARIES = new OutputTag<>("engram-summaries", new AvroTypeInfo<>(Summary.class));
    public static final OutputTag<Attribution> ATTRIBUTIONS =
            new OutputTag<>("engram-attributions", new AvroTypeInfo<>(Attribution.class));
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
    /** Queries of the session waiting for the next batch, in arrival order. */
    static final ListStateDescriptor<EngramEvent> PENDING =
            new ListStateDescriptor<>("engram-pending-queries", new AvroTypeInfo<>(EngramEvent.class));

    /** Citations put on an answer. */
    static final int MAX_CITATIONS = 5;

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
    private transient MapState<Integer, io.engram.schemas.MemoryUnit> policyUnits;
    private transient MapState<Long, io.engram.schemas.DroppedUnit> droppedUnits;
    private transient org.apache.flink.api.common.state.ValueState<io.engram.schemas.PolicyState> policyState;
    private transient InternalTimerService<VoidNamespace> timers;
    /** Sessions with parked queries, in arrival order (an index of PENDING, rebuilt from timers after a restore). */
    private transient Set<String> parked;
    /** CRC32C of the blocks of the memory last loaded (see MemoryStats.fingerprint). */
    private transient String lastFingerprint;
    /** Memory-policy state per recently processed session (scores, units, retained sets), by next sequence index. */
    private transient LinkedHashMap<String, PolicyStates> policyStates;

    private record PolicyStates(long nextSeq, java.util.Map<Object, Object> states) {
        static io.engram.schemas.MemoryUnit toRecord(io.engram.engine.memory.PolicySnapshot.Unit u) {
            int layers = u.repr().length;
            int kvDim = u.repr()[0].length;
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(layers * kvDim * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            for (float[] row : u.repr()) {
                for (float f : row) {
                    b.putFloat(f);
                }
            }
            b.flip();
            return io.engram.schemas.MemoryUnit.newBuilder().setStartSeq(u.start()).setEndSeq(u.end())
                    .setKind(u.episode() ? io.engram.schemas.MemoryUnitKind.EPISODE : io.engram.schemas.MemoryUnitKind.BLOCK)
                    .setLayers(layers).setKvDim(kvDim).setReprKeys(b).build();
        }

        static io.engram.engine.memory.PolicySnapshot.Unit fromRecord(io.engram.schemas.MemoryUnit u) {
            java.nio.ByteBuffer b = u.getReprKeys().duplicate().order(java.nio.ByteOrder.LITTLE_ENDIAN);
            if (b.remaining() != u.getLayers() * u.getKvDim() * 4) {
                throw new CorruptMemoryException("memory unit [%d, %d) holds %d bytes of keys for %d x %d floats"
                        .formatted(u.getStartSeq(), u.getEndSeq(), b.remaining(), u.getLayers(), u.getKvDim()));
            }
            float[][] repr = new float[u.getLayers()][u.getKvDim()];
            for (float[] row : repr) {
                for (int j = 0; j < row.length; j++) {
                    row[j] = b.getFloat();
                }
            }
            return new io.engram.engine.memory.PolicySnapshot.Unit(u.getStartSeq(), u.getEndSeq(),
                    u.getKind() == io.engram.schemas.MemoryUnitKind.EPISODE, repr);
        }
    }

    /** Sessions whose policy state is kept between events (beyond that, a session's policy restarts from its memory). */
    static final int POLICY_STATE_SESSIONS = 4096;
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
        engine = new SessionEngine(t, model.tokenizer(), settings.memory().create(model.model().config(), Path.of(settings.modelDir())),
                PromptFormat.PLAIN);
        policyStates = new LinkedHashMap<>(16, 0.75f, true);
        modelName = model.model().config().name();
        store = new FlinkMemoryStore(getKeyedStateStore(), this::getCurrentKey);
        workingSet = new io.engram.state.cache.WorkingSet(settings.workingSetBytes());
        events = getKeyedStateStore().getMapState(EVENTS);
        pending = getKeyedStateStore().getListState(PENDING);
        policyUnits = getKeyedStateStore().getMapState(POLICY_UNITS);
        droppedUnits = getKeyedStateStore().getMapState(DROPPED_UNITS);
        policyState = getKeyedStateStore().getState(POLICY_STATE);
        timers = getInternalTimerService("engram-query-batches", VoidNamespaceSerializer.INSTANCE, this);
        parked = new LinkedHashSet<>();
        metrics = new SessionMetrics(getMetricGroup(), settings.kvStorage());
        LOG.info("session memory operator {} ready: model {}, backend {}, memory policy {}, batches of up to {} sessions within {} ms",
                getRuntimeContext().getTaskInfo().getTaskNameWithSubtasks(), modelName, backend.describe(),
                settings.memory().describe(), settings.maxBatch(), settings.batchWindowMillis());
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
            policyStates.remove(event.getSessionId());
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
                remember(e.getSessionId(), memories.get(i));
                List<EngramEvent> queue = queued();
                pending.update(queue.subList(1, queue.size()));
                if (queue.size() == 1) {
                    parked.remove(e.getSessionId());
                }
                output.collect(new StreamRecord<>(toRecord(e, answers.get(i), memories.get(i), fingerprints.get(i),
                        (t1 - t0) / 1_000_000, batch.size())));
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
        int interval = settings.summaryIntervalTokens();
        long cut = summaryCut(mem);
        if (interval > 0 && cut - updated.getSummarizedSeq() >= interval) {
            int lastEvent = eventIndex;
            while (lastEvent > 0 && events.get(lastEvent).getFirstSeq() >= cut) {
                lastEvent--; // the episode ends inside an earlier event
            }
            emitSummary(event, mem, updated, SummaryKind.EPISODE, cut - 1, lastEvent);
            updated.setSummarizedEvents(cut == updated.getNextSeq() ? updated.getEventCount() : lastEvent);
            updated.setSummarizedSeq(cut);
        }
        retain(event, mem, updated, crcs);
        store.putIndex(event.getSessionId(), updated);
        metrics.memory(session, mem);
        remember(session, mem);
    }

    /** Most recent blocks retention never drops (the local context of the next questions). */
    static final int RETENTION_PROTECTED_BLOCKS = 2;

    /**
     * Applies the session's cap: when its stored blocks pass it, an episode summary covering everything not summarized
     * yet is emitted first, then blocks are dropped (from keyed state, the working set and the memory) as the retention
     * policy chooses, each leaving a {@link io.engram.schemas.DroppedUnit} with its source events; the index is updated.
     */
    private void retain(EngramEvent event, KvCache mem, SessionIndex updated, java.util.Map<Long, Integer> crcs) throws Exception {
        SessionSettings.Retention r = settings.retention();
        if (r.policy() == io.engram.schemas.RetentionPolicy.KEEP_ALL) {
            return;
        }
        List<io.engram.state.retention.Retention.Candidate> candidates = new ArrayList<>();
        for (KvBlock b : mem.blocks()) {
            double sum = 0;
            int n = 0;
            for (int i = 0; i < b.length(); i++) {
                if (!Float.isNaN(b.score(i))) {
                    sum += b.score(i);
                    n++;
                }
            }
            candidates.add(new io.engram.state.retention.Retention.Candidate(b.id(), b.firstSeq(), b.length(),
                    KvBlockCodec.encodedSize(b.length(), mem.layers(), mem.kvDim(), settings.kvStorage()), n == 0 ? Double.NaN : sum / n));
        }
        List<io.engram.state.retention.Retention.Candidate> drop = io.engram.state.retention.Retention.choose(candidates, r.policy(),
                r.maxTokens(), r.maxBytes(), RETENTION_PROTECTED_BLOCKS);
        if (drop.isEmpty()) {
            return;
        }
        String session = event.getSessionId();
        if (updated.getSummarizedSeq() < updated.getNextSeq()) {
            emitSummary(event, mem, updated, SummaryKind.EPISODE); // the dropped text keeps a summary
            updated.setSummarizedEvents(updated.getEventCount());
            updated.setSummarizedSeq(updated.getNextSeq());
        }
        long droppedTokens = 0;
        for (io.engram.state.retention.Retention.Candidate c : drop) {
            KvBlock b = mem.blockAt(c.firstSeq());
            int firstEvent = -1;
            int lastEvent = -1;
            for (int i = 0; i < b.length(); i++) {
                long tag = b.source(i);
                if (tag != io.engram.engine.session.Provenance.NONE) {
                    int ev = io.engram.engine.session.Provenance.eventIndex(tag);
                    firstEvent = firstEvent < 0 ? ev : Math.min(firstEvent, ev);
                    lastEvent = Math.max(lastEvent, ev);
                }
            }
            droppedUnits.put(b.id(), io.engram.schemas.DroppedUnit.newBuilder().setBlockId(b.id()).setFirstSeq(b.firstSeq())
                    .setTokens(b.length()).setFirstEvent(firstEvent).setLastEvent(lastEvent)
                    .setMeanScore(Double.isNaN(c.meanScore()) ? null : (float) c.meanScore()).setReason(r.policy())
                    .setSummarizedSeq(updated.getSummarizedSeq()).setDroppedAtMs(event.getTimestampMs()).build());
            store.deleteUnit(session, b.id());
            mem.detach(b);
            mem.unitStore().forget(b);
            crcs.remove(b.id());
            droppedTokens += b.length();
        }
        workingSet.invalidate(session);
        List<Long> ids = new ArrayList<>();
        List<Integer> blockCrcs = new ArrayList<>();
        for (KvBlock b : mem.blocks()) {
            ids.add(b.id());
            blockCrcs.add(crcs.get(b.id()));
        }
        updated.setBlockIds(ids);
        updated.setBlockCrcs(blockCrcs);
        updated.setDroppedTokens(updated.getDroppedTokens() + droppedTokens);
        updated.setDroppedUnits(updated.getDroppedUnits() + drop.size());
        LOG.debug("session {}: retention {} dropped {} blocks ({} tokens)", session, r.policy(), drop.size(), droppedTokens);
    }

    private KvCache newMemory(String session) {
        KvCache mem = engine.newMemory();
        mem.unitStore(new StoredUnitStore(session, store, backend, mem));
        return mem;
    }

    /**
     * Keeps the session's policy state for its next event: in memory (bounded number of sessions) and in keyed state,
     * new units only, so that it survives a restart or a move to another task.
     */
    private void remember(String session, KvCache mem) throws Exception {
        policyStates.put(session, new PolicyStates(mem.nextSeq(), mem.policyStates()));
        while (policyStates.size() > POLICY_STATE_SESSIONS) {
            policyStates.remove(policyStates.keySet().iterator().next());
        }
        io.engram.schemas.PolicyState old = policyState.value();
        int stored = old == null ? 0 : old.getUnitCount();
        io.engram.engine.memory.PolicySnapshot snap = engine.policy().snapshot(mem, stored);
        if (snap == null) {
            return;
        }
        if (old != null && !old.getPolicy().equals(snap.policy())) {
            policyUnits.clear();
            snap = engine.policy().snapshot(mem, 0);
        } else if (snap.firstUnit() < stored) {
            policyUnits.clear(); // units before the stored count changed (retention dropped blocks): write all again
            stored = 0;
        }
        for (int i = snap.unitCount(); i < stored; i++) {
            policyUnits.remove(i); // units a truncate took back
        }
        int i = snap.firstUnit();
        for (io.engram.engine.memory.PolicySnapshot.Unit u : snap.units()) {
            policyUnits.put(i++, PolicyStates.toRecord(u));
        }
        List<Long> bounds = new ArrayList<>();
        for (long b : snap.boundaries()) {
            bounds.add(b);
        }
        List<Long> kept = new ArrayList<>(snap.retained().length);
        for (long k : snap.retained()) {
            kept.add(k);
        }
        List<Float> scores = new ArrayList<>(snap.retainedScores().length);
        for (float f : snap.retainedScores()) {
            scores.add(f);
        }
        policyState.update(io.engram.schemas.PolicyState.newBuilder().setPolicy(snap.policy()).setNextSeq(mem.nextSeq())
                .setPackedEnd(snap.packedEnd()).setUnitCount(snap.unitCount()).setBoundaries(bounds).setRetainedSeqs(kept)
                .setRetainedScores(scores).setEvicted(snap.evicted()).build());
    }

    /** Restores the policy state stored for the session, when it belongs to the memory just loaded. */
    private void restorePolicy(KvCache mem) throws Exception {
        io.engram.schemas.PolicyState ps = policyState.value();
        if (ps == null || ps.getNextSeq() != mem.nextSeq()) {
            return;
        }
        List<io.engram.engine.memory.PolicySnapshot.Unit> units = new ArrayList<>(ps.getUnitCount());
        for (int i = 0; i < ps.getUnitCount(); i++) {
            io.engram.schemas.MemoryUnit u = policyUnits.get(i);
            if (u == null) {
                throw new CorruptMemoryException("policy state lists " + ps.getUnitCount() + " units but unit " + i + " is missing");
            }
            units.add(PolicyStates.fromRecord(u));
        }
        long[] bounds = ps.getBoundaries().stream().mapToLong(Long::longValue).toArray();
        long[] kept = ps.getRetainedSeqs().stream().mapToLong(Long::longValue).toArray();
        float[] scores = new float[ps.getRetainedScores().size()];
        for (int i = 0; i < scores.length; i++) {
            scores[i] = ps.getRetainedScores().get(i);
        }
        engine.policy().restore(mem, new io.engram.engine.memory.PolicySnapshot(ps.getPolicy(), ps.getPackedEnd(), ps.getUnitCount(),
                0, units, bounds, kept, scores, ps.getEvicted()));
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
        PolicyStates kept = policyStates.get(session);
        if (kept != null && kept.nextSeq() == idx.getNextSeq()) {
            mem.adoptPolicyStates(kept.states());
        } else {
            restorePolicy(mem);
        }
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

    private io.engram.schemas.Answer toRecord(EngramEvent event, Answer a, KvCache mem, String fingerprint, long batchMillis,
            int batchSize) throws Exception {
        QueryEvent q = (QueryEvent) event.getPayload();
        return io.engram.schemas.Answer.newBuilder()
                .setSessionId(event.getSessionId())
                .setQueryId(q.getQueryId())
                .setQuerySource(event.getSource())
                .setText(a.text())
                .setPromptTokens(a.generation().promptTokens())
                .setMemoryTokens((int) Math.min(Integer.MAX_VALUE, a.memoryTokens()))
                .setGeneratedTokens(a.generation().tokens().length)
                .setTimings(new AnswerTimings(0L, 0L, a.generation().prefillNanos() / 1_000_000,
                        a.generation().decodeNanos() / 1_000_000, batchMillis))
                .setModel(modelName)
                .setMemory(new MemoryStats(mem.attachedTokens(), mem.blocks().size(), mem.blocks().size() * mem.floatsPerBlock() * 4,
                        fingerprint))
                .setCitations(citations(a.citations(), mem))
                .setCreatedAtMs(event.getTimestampMs())
                .build();
    }

    private List<io.engram.schemas.Citation> citations(List<Citation> cites, KvCache mem) throws Exception {
        List<io.engram.schemas.Citation> out = new ArrayList<>();
        for (Citation c : cites) {
            if (out.size() == MAX_CITATIONS) {
                break;
            }
            EventProvenance p = events.get(c.eventIndex());
            if (p == null) {
                throw new CorruptMemoryException("memory cites event " + c.eventIndex() + " which has no provenance");
            }
            int rank = out.size() + 1;
            out.add(new io.engram.schemas.Citation("[" + rank + "]", SourceSegment.newBuilder()
                    .setSource(p.getSource())
                    .setEventId(p.getEventId())
                    .setCharStart(Math.min(c.charStart(), p.getCharLength()))
                    .setCharEnd(Math.min(c.charEnd(), p.getCharLength()))
                    .setExcerpt(excerpt(mem, c))
                    .setScore(c.score())
                    .setRank(rank)
                    .build()));
        }
        return out;
    }

    /** The cited passage's text, decoded from the memory's own tokens. */
    private String excerpt(KvCache mem, Citation c) {
        List<Integer> ids = new ArrayList<>();
        for (KvBlock b : mem.blocks()) {
            for (int s = 0; s < b.length(); s++) {
                long tag = b.source(s);
                if (tag != Provenance.NONE && Provenance.eventIndex(tag) == c.eventIndex()
                        && Provenance.charOffset(tag) >= c.charStart() && Provenance.charOffset(tag) < c.charEnd()) {
                    ids.add(b.token(s));
                }
            }
        }
        return engine.tokenizer().decode(ids.stream().mapToInt(Integer::intValue).toArray(), true);
    }

    private void control(EngramEvent event, ControlEvent c) throws Exception {
        switch (c.getAction()) {
            case RESET, CLOSE_SESSION -> {
                store.clear(event.getSessionId());
                workingSet.invalidate(event.getSessionId());
                policyStates.remove(event.getSessionId());
                events.clear();
                pending.clear();
                policyUnits.clear();
                policyState.clear();
                droppedUnits.clear();
                metrics.cleared(event.getSessionId());
                LOG.info("session {}: memory cleared ({})", event.getSessionId(), c.getAction());
            }
            case REQUEST_SUMMARY -> summarize(event);
            default -> throw new BadInput(ErrorClass.UNSUPPORTED, "control action " + c.getAction() + " is not supported");
        }
    }

    private void summarize(EngramEvent event) throws Exception {
        SessionIndex idx = store.getIndex(event.getSessionId());
        if (idx == null) {
            throw new BadInput(ErrorClass.UNKNOWN_SESSION, "summary requested for session " + event.getSessionId() + ", which has no memory");
        }
        emitSummary(event, load(event.getSessionId(), idx), idx, SummaryKind.SESSION);
    }

    /**
     * A summary generated over the whole memory. An EPISODE summary covers the events since the previous one, a SESSION
     * summary the whole session.
     */
    /**
     * Where an episode summary may end: with an episodic memory policy (EM-LLM) the start of the latest event it found
     * (boundaries drive summaries), otherwise the end of the stream.
     */
    private long summaryCut(KvCache mem) {
        long boundary = engine.policy().lastEpisodeBoundary(mem);
        return boundary < 0 ? mem.nextSeq() : Math.min(boundary, mem.nextSeq());
    }

    private void emitSummary(EngramEvent event, KvCache mem, SessionIndex idx, SummaryKind kind) throws Exception {
        emitSummary(event, mem, idx, kind, idx.getNextSeq() - 1, idx.getEventCount() - 1);
    }

    private void emitSummary(EngramEvent event, KvCache mem, SessionIndex idx, SummaryKind kind, long lastToken, int lastEventIndex)
            throws Exception {
        boolean episode = kind == SummaryKind.EPISODE;
        String instruction = episode ? "Summarize the most recent part of the text above in a few sentences."
                : "Summarize the text above in a few sentences.";
        Answer a = engine.answer(mem, instruction, SamplingOptions.greedy(settings.summaryMaxTokens()), TokenListener.NONE);
        EventProvenance first = events.get(episode ? idx.getSummarizedEvents() : 0);
        EventProvenance last = events.get(Math.max(0, lastEventIndex));
        output.collect(SUMMARIES, new StreamRecord<>(Summary.newBuilder()
                .setSessionId(event.getSessionId())
                .setKind(kind)
                .setFirstEvent(first.getSource())
                .setLastEvent(last.getSource())
                .setFirstToken(episode ? idx.getSummarizedSeq() : 0L)
                .setLastToken(lastToken)
                .setText(a.text())
                .setModel(modelName)
                .setCreatedAtMs(event.getTimestampMs())
                .build()));
    }
}
