package io.engram.engine.memory.retrieval;

import io.engram.engine.config.ModelConfig;
import io.engram.engine.kv.AttentionObserver;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.memory.MemoryPolicy;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Block memory with retrieval, what InfLLM ({@link InfLlm}: uniform units, top-k per step) and EM-LLM ({@link EmLlm}:
 * surprise-segmented events, a token budget and a temporal-contiguity buffer) share (algorithms.md sections 2 and 3):
 * the units, their representative keys and index, the attention plan around them, and what a restart must keep.
 *
 * <p>Per step every query attends, in one softmax, to: the first {@code initTokens} tokens, the tokens that left the
 * window but are not packed into a unit yet, the units retrieved for this layer (all of these at one fixed position,
 * 0), and the local window of the last {@code localTokens} tokens plus the step itself at positions relative to the
 * window start. Queries therefore never see a position beyond {@code localTokens + step}, however long the stream.
 *
 * <p>Units are chosen per layer by the inner product of the step's mean query (rotated to the distance of the fixed
 * position) with each unit's representative keys: per KV head, the mean raw key of the {@code reprTokens} tokens that
 * received the most attention while they were in the local window. On a question's steps the units its tokens match
 * best ({@link LexicalMatch}) join them. The storage blocks of units stay in engine memory
 * only while an LRU per layer holds them ({@code cachedBlocks}); the rest live in the cache's {@link
 * io.engram.engine.kv.UnitStore}. While the whole stream fits the local window the plan is exact full attention.
 *
 * <p>Around it: {@link UnitPacker} forms the units (and their representative keys), {@link UnitIndex} ranks units for a
 * query without scoring all of them, {@link RankingRecall} measures that ranking against exact scans, {@link
 * UnitResidency} keeps retrieved blocks in engine memory, {@link RetrievalSnapshots} writes and reads what a restart
 * keeps, and {@link RetrievalState} is what one session keeps.
 */
public abstract sealed class RetrievalMemory implements MemoryPolicy permits InfLlm, EmLlm {

    /** A unit of memory: tokens {@code [start, end)}, and per layer its representative keys {@code (kvHeads*headDim)}. */
    public record Unit(long start, long end, float[][] repr) {
        public int length() {
            return (int) (end - start);
        }
    }

    /** Lists of the unit index a ranking opens (UnitIndex). */
    static final int INDEX_PROBES = 16;

    final RetrievalSettings cfg;
    final int layers;
    final int kvHeads;
    final int headDim;
    final UnitPacker packer;
    private final RankingRecall recall = new RankingRecall();
    private final RankingQuery rankingQuery;

    RetrievalMemory(RetrievalSettings settings, ModelConfig model, RankingProjection projection) {
        this.cfg = settings;
        this.rankingQuery = new RankingQuery(model, settings.localTokens(), projection);
        this.layers = model.layers();
        this.kvHeads = model.kvHeads();
        this.headDim = model.headDim();
        this.packer = new UnitPacker(settings, layers, kvHeads, headDim);
    }

    /**
     * The policy these settings describe: InfLLM when a number of units is retrieved per step, EM-LLM when a memory
     * token budget is (over its surprise events, or over uniform units as an ablation).
     */
    public static RetrievalMemory of(RetrievalSettings settings, ModelConfig model) {
        return of(settings, model, null);
    }

    /** The same, ranking units with {@code projection} applied to each step's query (null: the raw query). */
    public static RetrievalMemory of(RetrievalSettings settings, ModelConfig model, RankingProjection projection) {
        return settings.topUnits() > 0
                ? new InfLlm(settings, model, projection)
                : new EmLlm(settings, model, projection);
    }

    /** The ranking projection in use, or null. */
    public RankingProjection projection() {
        return rankingQuery.projection();
    }

    /** The policy's name in snapshots: state written by one policy is not read by the other. */
    abstract String name();

    @Override
    public boolean offloadsMemory() {
        return true;
    }

    /** Whether the units are EM-LLM events (stored with the snapshot). */
    abstract boolean episodes();

    /** Cuts the tokens before {@code limit} that left the window into units, after the non-transient step [first, end). */
    abstract void pack(RetrievalState st, KvCache cache, long firstSeq, long end, long limit);

    /** Whether {@code units} exceed what one step retrieves (else every unit is attended, no query is needed). */
    abstract boolean overBudget(RetrievalState st, List<Unit> units);

    /** Draws units from {@code ranking} into {@code rank} (the order drawn) and {@code picked} (those retrieved). */
    abstract void pick(RetrievalState st, int layer, UnitRanking ranking, List<Integer> rank, Set<Integer> picked);

    public RetrievalSettings settings() {
        return cfg;
    }

    RetrievalState state(KvCache cache) {
        return cache.policyState(
                this, () -> new RetrievalState(layers, kvHeads * headDim, cfg.initTokens(), INDEX_PROBES));
    }

    /** The units memory holds for a session (for tests and reports). */
    public List<Unit> units(KvCache cache) {
        return Collections.unmodifiableList(state(cache).units);
    }

    /** Rankings served since this policy was made, and how well the unit index did (bench memory prints it). */
    public RankingRecall.Stats indexStats() {
        return recall.stats();
    }

    /** The unit index of a session (for tests). */
    UnitIndex index(KvCache cache) {
        return state(cache).index;
    }

    /** EM-LLM event starts found so far that are not packed yet or start a unit (none for InfLLM). */
    public Set<Long> boundaries(KvCache cache) {
        return Collections.unmodifiableSet(state(cache).boundaries);
    }

    /** The units retrieved for {@code layer} at the session's last step. */
    public List<Unit> selected(KvCache cache, int layer) {
        return state(cache).selected.get(layer);
    }

    @Override
    public io.engram.engine.memory.PolicySnapshot snapshot(KvCache cache, int fromUnit) {
        RetrievalState st = state(cache);
        repair(st, cache, cache.nextSeq()); // nothing derived from tokens a truncate removed (a question, an answer)
        return RetrievalSnapshots.write(st, cache, fromUnit, name(), episodes());
    }

    @Override
    public void restore(KvCache cache, io.engram.engine.memory.PolicySnapshot s) {
        if (!name().equals(s.policy())) {
            return; // state of another policy: start afresh from the memory
        }
        RetrievalState st = state(cache);
        List<int[]> lists = RetrievalSnapshots.read(st, cache, s, layers, kvHeads, headDim);
        reindex(st, lists);
        st.index.takeReassigned(); // what was restored is what is stored
        UnitResidency.restored(this, st, cache);
    }

    @Override
    public AttentionPlan plan(KvCache cache, long firstSeq, int n, int kvHeadCount) {
        RetrievalState st = state(cache);
        repair(st, cache, firstSeq);
        long end = firstSeq + n;
        long w = Math.max(0, firstSeq - cfg.localTokens());
        st.window = w;
        st.exact = w == 0;
        List<KvSpan> spans = new ArrayList<>();
        int[] qpos = new int[n];
        if (st.exact) {
            for (KvBlock b : cache.blocks()) {
                spans.add(KvSpan.stored(b));
                for (long s = Math.max(firstSeq, b.firstSeq()); s < Math.min(end, b.firstSeq() + b.length()); s++) {
                    qpos[(int) (s - firstSeq)] = b.position((int) (s - b.firstSeq()));
                }
            }
        } else {
            long initEnd = Math.min(cfg.initTokens(), w);
            long remStart = Math.max(initEnd, st.packedEnd);
            for (KvBlock b : relevantBlocks(cache, initEnd, Math.min(remStart, w))) {
                long lo = b.firstSeq();
                long hi = lo + b.length();
                addFixed(spans, b, lo, hi, 0, initEnd);
                addFixed(spans, b, lo, hi, remStart, w);
                long a = Math.max(lo, w);
                long z = Math.min(hi, end);
                if (a < z) {
                    spans.add(
                            new KvSpan(b, (int) (a - lo), (int) (z - lo), KvSpan.Positions.CONTIGUOUS, (int) (a - w)));
                }
            }
            for (int i = 0; i < n; i++) {
                qpos[i] = (int) (firstSeq + i - w);
            }
        }
        st.base = spans;
        LexicalMatch.matchQuestion(st, cache, cfg.lexicalUnits(), firstSeq, n);
        AttentionPlan plan = AttentionPlan.uniform(kvHeadCount, spans, qpos);
        // a question, its answer or a summary prompt is truncated away: the attention it paid must not pick the
        // representatives of units packed later
        return cache.isTransient() ? plan : plan.withObserver(massObserver(st, w, kvHeadCount));
    }

    private static void addFixed(List<KvSpan> spans, KvBlock b, long lo, long hi, long from, long to) {
        long a = Math.max(lo, from);
        long z = Math.min(hi, to);
        if (a < z) {
            spans.add(new KvSpan(b, (int) (a - lo), (int) (z - lo), KvSpan.Positions.FIXED, 0));
        }
    }

    /** Accumulates the attention mass window tokens receive: the basis of representative keys. */
    private AttentionObserver massObserver(RetrievalState st, long window, int kvHeadCount) {
        return (layer, kvHead, span, mass, offset) -> {
            KvBlock b = span.block();
            if (b.firstSeq() + span.to() <= Math.max(window, st.packedEnd)) {
                return;
            }
            float[] acc = st.mass.computeIfAbsent(b, x -> new float[layers * kvHeadCount * x.capacity()]);
            int base = (layer * kvHeadCount + kvHead) * b.capacity();
            for (int j = 0; j < span.length(); j++) {
                int slot = span.from() + j;
                if (b.seq(slot) >= window) {
                    acc[base + slot] += mass[offset + j];
                }
            }
        };
    }

    /** Forgets what was derived from tokens a truncate removed (e.g. an answer that left the window). */
    private void repair(RetrievalState st, KvCache cache, long firstSeq) {
        // units hold only tokens outside the local window of the next step; a truncate moves the window back
        long window = Math.max(0, firstSeq - cfg.localTokens());
        if (st.packedEnd > Math.max(window, cfg.initTokens())) {
            st.unitsRemoved |= removeUnits(st, u -> u.end() > window);
            st.packedEnd = st.units.isEmpty()
                    ? cfg.initTokens()
                    : Math.max(cfg.initTokens(), st.units.getLast().end());
            for (int l = 0; l < layers; l++) {
                st.contiguity.get(l).removeIf(u -> u.end() > window);
            }
        }
        // units over blocks that retention dropped from the session's memory go with them
        if (st.checkedStructure != cache.structureVersion()) {
            if (removeUnits(st, u -> UnitPacker.attachedUntil(cache, u.start(), u.end()) < u.end())) {
                st.unitsRemoved = true;
            }
            st.checkedStructure = cache.structureVersion();
        }
        st.boundaries.tailSet(firstSeq).clear();
        st.mass.keySet().removeIf(b -> cache.blockAt(b.firstSeq()) != b);
        for (LinkedHashMap<KvBlock, Boolean> lru : st.lru) {
            lru.keySet().removeIf(b -> cache.blockAt(b.firstSeq()) != b || pinned(st, b));
        }
    }

    /** Drops the units {@code drop} matches; the index keeps the others' lists. */
    private boolean removeUnits(RetrievalState st, java.util.function.Predicate<Unit> drop) {
        List<Unit> kept = new ArrayList<>(st.units.size());
        List<int[]> lists = new ArrayList<>(st.units.size());
        for (int i = 0; i < st.units.size(); i++) {
            Unit u = st.units.get(i);
            if (!drop.test(u)) {
                kept.add(u);
                lists.add(st.index.lists(i));
            }
        }
        if (kept.size() == st.units.size()) {
            return false;
        }
        st.units.clear();
        st.units.addAll(kept);
        reindex(st, lists);
        return true;
    }

    private void reindex(RetrievalState st, List<int[]> lists) {
        List<float[][]> reprs = new ArrayList<>(st.units.size());
        st.unitTokens = 0;
        for (Unit u : st.units) {
            reprs.add(u.repr());
            st.unitTokens += u.length();
        }
        st.index.restore(reprs, lists);
    }

    /**
     * The blocks a step can touch besides retrieved units: those holding tokens before {@code headEnd} (the init
     * tokens) and those reaching past {@code tailFrom} (the unpacked remainder and the window), in order.
     */
    private static List<KvBlock> relevantBlocks(KvCache cache, long headEnd, long tailFrom) {
        List<KvBlock> all = cache.blocks();
        int head = cache.firstBlockEndingAfter(Math.max(0, headEnd - 1));
        int headCount = headEnd <= 0 ? 0 : Math.min(all.size(), head + 1);
        int tail = cache.firstBlockEndingAfter(tailFrom);
        if (tail <= headCount) {
            return all;
        }
        List<KvBlock> out = new ArrayList<>(headCount + all.size() - tail);
        out.addAll(all.subList(0, headCount));
        out.addAll(all.subList(tail, all.size()));
        return out;
    }

    boolean pinned(RetrievalState st, KvBlock b) {
        return b.firstSeq() < cfg.initTokens() || b.firstSeq() + b.capacity() > st.packedEnd;
    }

    @Override
    public boolean needsQueries(KvCache cache, long firstSeq, int n) {
        RetrievalState st = state(cache);
        return !st.exact && overBudget(st, st.units);
    }

    @Override
    public AttentionPlan planLayer(KvCache cache, int layer, AttentionPlan stepPlan, float[] queryMean) {
        RetrievalState st = state(cache);
        for (KvBlock b : st.exact ? cache.blocks() : relevantBlocks(cache, cfg.initTokens(), st.packedEnd)) {
            if (st.exact || pinned(st, b)) {
                cache.ensureResident(b, layer);
            }
        }
        if (st.exact) {
            return stepPlan;
        }
        int shared = rankingQuery.sharedFrom();
        List<Unit> chosen;
        if (queryMean == null) {
            chosen = List.copyOf(st.units);
        } else if (shared >= 0 && layer > shared) {
            chosen = st.selected.get(shared); // this step's choice of the shared layer, planned before this one
        } else {
            chosen = select(st, layer, queryMean);
        }
        st.selected.set(layer, chosen);
        List<KvSpan> spans = new ArrayList<>();
        for (Unit u : chosen) {
            for (KvBlock b : blocksOf(cache, u.start(), u.end())) {
                long lo = b.firstSeq();
                addFixed(spans, b, lo, lo + b.length(), u.start(), u.end());
            }
        }
        UnitResidency.retrieve(this, st, cache, layer, chosen);
        spans.addAll(st.base);
        return stepPlan.withSpans(Collections.nCopies(kvHeads, List.copyOf(spans)));
    }

    /** Retrieval for one layer: the units {@link #pick} draws from the ranking, in stream order. */
    private List<Unit> select(RetrievalState st, int layer, float[] queryMean) {
        float[] q = rankingQuery.of(layer, queryMean);
        // units in rank order (score descending, earlier unit first on ties), drawn lazily: a step needs only the first
        // few of possibly millions of tokens' worth of units, and past UnitIndex.CLUSTER_FROM units only a few lists
        // of the index are scored
        UnitRanking ranking = st.index.rank(layer, q);
        List<Integer> rank = new ArrayList<>();
        Set<Integer> picked = new LinkedHashSet<>();
        pick(st, layer, ranking, rank, picked);
        recall.measure(st.index, st.rankingsSeen++, layer, q, ranking, rank, RankingRecall.similar(picked, rank));
        LexicalMatch.addMatched(st, picked);
        List<Unit> out = new ArrayList<>(picked.size());
        List<Integer> order = new ArrayList<>(picked);
        Collections.sort(order);
        for (int i : order) {
            out.add(st.units.get(i));
        }
        return out;
    }

    @Override
    public void afterStep(KvCache cache, long firstSeq, int n) {
        RetrievalState st = state(cache);
        if (cache.isTransient()) {
            return; // a question and its answer: tokens leaving the window stay in the remainder until the truncate
        }
        long end = firstSeq + n;
        long before = st.packedEnd;
        pack(st, cache, firstSeq, end, Math.max(0, end - cfg.localTokens()));
        if (st.packedEnd > before) {
            UnitResidency.packed(this, st, cache, before);
        }
    }

    static List<KvBlock> blocksOf(KvCache cache, long a, long z) {
        List<KvBlock> out = new ArrayList<>(2);
        for (long s = a; s < z; ) {
            KvBlock b = cache.blockAt(s);
            if (b == null) {
                throw new IllegalStateException("memory has no block holding sequence index " + s);
            }
            out.add(b);
            s = b.firstSeq() + b.capacity();
        }
        return out;
    }
}
