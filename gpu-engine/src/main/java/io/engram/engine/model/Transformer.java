package io.engram.engine.model;

import io.engram.engine.backend.Backend;
import io.engram.engine.backend.BoundWeight;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.config.ModelConfig;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.tensor.Buf;
import java.util.ArrayList;
import java.util.List;

/**
 * The decoder forward pass of the Llama family (Llama, Qwen2, Mistral) over a block KV cache, written once for every
 * backend: it only calls {@link Backend} ops. Tokens are appended to the cache with un-rotated keys; the memory policy
 * decides which blocks each KV head attends to and at which positions; RoPE is applied inside the attention op.
 *
 * <p>Weights are bound once at construction and shared by every session (cache) that uses this instance. Not
 * thread-safe: one caller thread at a time.
 */
public final class Transformer {
    private final ModelConfig c;
    private final Backend backend;
    private final EngineSettings settings;
    private final RopeTable rope;
    private final Backend.AttentionShape shape;
    private final float attnScale;

    private final BoundWeight embedding; // (vocab, hidden)
    private final BoundWeight finalNorm; // (hidden)
    private final BoundWeight lmHead; // (vocab, hidden)
    private final Layer[] layers;

    private record Layer(
            BoundWeight attnNorm,
            BoundWeight wq,
            BoundWeight wk,
            BoundWeight wv,
            BoundWeight bq,
            BoundWeight bk,
            BoundWeight bv,
            BoundWeight wo,
            BoundWeight ffnNorm,
            BoundWeight wGate,
            BoundWeight wUp,
            BoundWeight wDown) {}

    public Transformer(ModelConfig config, ModelWeights w, Backend backend, EngineSettings settings) {
        this.c = config;
        this.backend = backend;
        this.settings = settings;
        this.rope = config.ropeTable();
        this.shape = new Backend.AttentionShape(config.heads(), config.kvHeads(), config.headDim());
        this.attnScale = (float) (1.0 / Math.sqrt(config.headDim()));
        this.embedding = backend.bind(w.embedding());
        this.finalNorm = backend.bind(w.finalNorm());
        this.lmHead = w.lmHead() == w.embedding() ? embedding : backend.bind(w.lmHead());
        this.layers = new Layer[config.layers()];
        for (int i = 0; i < layers.length; i++) {
            ModelWeights.LayerWeights l = w.layers()[i];
            layers[i] = new Layer(
                    backend.bind(l.attnNorm()),
                    backend.bind(l.wq()),
                    backend.bind(l.wk()),
                    backend.bind(l.wv()),
                    bindOrNull(l.bq()),
                    bindOrNull(l.bk()),
                    bindOrNull(l.bv()),
                    backend.bind(l.wo()),
                    backend.bind(l.ffnNorm()),
                    backend.bind(l.wGate()),
                    backend.bind(l.wUp()),
                    backend.bind(l.wDown()));
        }
    }

    private BoundWeight bindOrNull(io.engram.engine.tensor.WeightTensor t) {
        return t == null ? null : backend.bind(t);
    }

    public ModelConfig config() {
        return c;
    }

    public Backend backend() {
        return backend;
    }

    public EngineSettings settings() {
        return settings;
    }

    /** A new, empty KV cache on this model's backend with the configured block size. */
    public KvCache newCache() {
        return new KvCache(backend, c.layers(), c.kvDim(), settings.blockSize());
    }

    /** Receives logits of selected rows of a forward pass. {@code logits} is valid only during the call. */
    @FunctionalInterface
    public interface LogitsSink {
        void accept(long seq, float[] logits);
    }

    /**
     * Appends {@code tokens} to {@code cache} in chunks of {@link EngineSettings#prefillChunk()} and runs them
     * through the model. Positions are the sequence indices; {@code sources} (nullable) tags each token's provenance.
     *
     * @param wantLogits which rows to compute logits for: {@code ALL}, {@code LAST} or {@code NONE}
     * @param sink receives (sequence index, logits) for the selected rows, in order
     */
    public void forward(
            KvCache cache, int[] tokens, long[] sources, MemoryPolicy policy, Logits wantLogits, LogitsSink sink) {
        int chunk = settings.prefillChunk();
        for (int from = 0; from < tokens.length; from += chunk) {
            int n = Math.min(chunk, tokens.length - from);
            int[] t = java.util.Arrays.copyOfRange(tokens, from, from + n);
            long[] s = sources == null ? null : java.util.Arrays.copyOfRange(sources, from, from + n);
            boolean last = from + n == tokens.length;
            Logits want = switch (wantLogits) {
                case ALL -> Logits.ALL;
                case LAST -> last ? Logits.LAST : Logits.NONE;
                case NONE -> Logits.NONE;
            };
            step(cache, t, s, policy, want, sink);
        }
    }

    public enum Logits {
        ALL,
        LAST,
        NONE
    }

    private void step(KvCache cache, int[] tokens, long[] sources, MemoryPolicy policy, Logits want, LogitsSink sink) {
        stepBatch(List.of(new Sequence(cache, tokens, sources, policy, want, sink)));
    }

    /**
     * One forward step of several sequences at once (e.g. a decode step of many sessions): their tokens are stacked
     * so every weight matrix is read once for all of them, while attention runs per sequence over its own cache and
     * plan. Results equal those of running each sequence alone, bit for bit.
     *
     * @param tokens the sequence's tokens of this step (at most one prefill chunk)
     * @param sources provenance tag per token, or null
     */
    public record Sequence(
            KvCache cache, int[] tokens, long[] sources, MemoryPolicy policy, Logits want, LogitsSink sink) {}

    /** Runs one step for each sequence; see {@link Sequence}. Sequences must use distinct caches. */
    public void forwardBatch(List<Sequence> batch) {
        for (Sequence s : batch) {
            if (s.tokens().length > settings.prefillChunk()) {
                throw new IllegalArgumentException(
                        "a batched step takes at most one prefill chunk (%d tokens) per sequence, got %d"
                                .formatted(settings.prefillChunk(), s.tokens().length));
            }
        }
        stepBatch(batch);
    }

    private void stepBatch(List<Sequence> batch) {
        List<Buf> scratch = new ArrayList<>();
        try {
            runStep(batch, scratch);
        } finally {
            for (Buf b : scratch) {
                backend.free(b); // device backends reuse a step's scratch memory at once
            }
        }
    }

    private Buf scratch(List<Buf> scratch, int floats) {
        Buf b = backend.allocate(floats);
        scratch.add(b);
        return b;
    }

    /** One step: embed the stacked tokens, run every layer, hand out the logits asked for, let the policies observe. */
    private void runStep(List<Sequence> batch, List<Buf> tmp) {
        StepRows rows = StepRows.place(batch, c.kvHeads());
        Activations a = new Activations(tmp, rows);
        backend.getRows(embedding, rows.tokens, a.x); // x = E[tokens]: (n, hidden)
        for (int l = 0; l < layers.length; l++) {
            layer(l, batch, rows, a);
        }
        logits(batch, rows, a.x, tmp);
        for (int s = 0; s < batch.size(); s++) {
            Sequence sq = batch.get(s);
            sq.policy().afterStep(sq.cache(), rows.seq[s][0], rows.seq[s].length);
        }
    }

    /** A step's scratch activations, n rows each (all sequences stacked). */
    private final class Activations {
        final Buf x; // (n, hidden) residual stream
        final Buf xb; // (n, hidden) normed input of a sub-layer
        final Buf q; // (n, heads * headDim)
        final Buf k; // (n, kvHeads * headDim)
        final Buf v; // (n, kvHeads * headDim)
        final Buf att; // (n, heads * headDim) attention output
        final Buf o; // (n, hidden) a sub-layer's output
        final Buf gate; // (n, intermediate)
        final Buf up; // (n, intermediate)
        final Buf qOne; // (len, heads * headDim) one sequence's queries (the stacked ones when there is one)
        final Buf attOne; // (len, heads * headDim) one sequence's attention output
        float[] qHost; // host copy of one sequence's queries, for policies that plan by them

        Activations(List<Buf> tmp, StepRows rows) {
            int n = rows.rows();
            x = scratch(tmp, n * c.hiddenSize());
            xb = scratch(tmp, n * c.hiddenSize());
            q = scratch(tmp, n * c.qDim());
            k = scratch(tmp, n * c.kvDim());
            v = scratch(tmp, n * c.kvDim());
            att = scratch(tmp, n * c.qDim());
            o = scratch(tmp, n * c.hiddenSize());
            gate = scratch(tmp, n * c.intermediateSize());
            up = scratch(tmp, n * c.intermediateSize());
            boolean one = rows.sequences() == 1;
            qOne = one ? q : scratch(tmp, rows.longest() * c.qDim());
            attOne = one ? att : scratch(tmp, rows.longest() * c.qDim());
        }
    }

    /** Layer {@code l}: x += Wo attention(rmsnorm(x)); x += Wdown (silu(Wgate h) * Wup h) with h = rmsnorm(x). */
    private void layer(int l, List<Sequence> batch, StepRows rows, Activations a) {
        Layer L = layers[l];
        int n = rows.rows();
        int hidden = c.hiddenSize();
        int kvDim = c.kvDim();
        backend.rmsNorm(a.x, L.attnNorm, c.rmsEps(), n, hidden, a.xb); // xb = rmsnorm(x) * g: (n, hidden)
        backend.matmul(L.wq, a.xb, n, a.q); // q = xb Wq^T, Wq: (heads * headDim, hidden)
        backend.matmul(L.wk, a.xb, n, a.k); // k = xb Wk^T, Wk: (kvHeads * headDim, hidden)
        backend.matmul(L.wv, a.xb, n, a.v); // v = xb Wv^T, Wv: (kvHeads * headDim, hidden)
        if (L.bq != null) { // Qwen2's projection biases: (heads * headDim), (kvHeads * headDim) x 2
            backend.addBias(a.q, L.bq, n);
            backend.addBias(a.k, L.bk, n);
            backend.addBias(a.v, L.bv, n);
        }
        for (int s = 0;
                s < rows.sequences();
                s++) { // K and V into the caches, un-rotated (RoPE is applied in attention)
            for (KvCache.Placement p : rows.placed.get(s)) {
                backend.copyRows(a.k, rows.start(s) + p.row(), p.block().keys(l), p.slot(), p.count(), kvDim);
                backend.copyRows(a.v, rows.start(s) + p.row(), p.block().values(l), p.slot(), p.count(), kvDim);
            }
        }
        for (int s = 0; s < rows.sequences(); s++) {
            attend(l, batch.get(s), rows, s, a);
        }
        backend.matmul(L.wo, a.att, n, a.o); // o = att Wo^T, Wo: (hidden, heads * headDim)
        backend.add(a.x, a.o, n * hidden);
        backend.rmsNorm(a.x, L.ffnNorm, c.rmsEps(), n, hidden, a.xb); // xb = rmsnorm(x) * g
        backend.matmul(L.wGate, a.xb, n, a.gate); // Wgate: (intermediate, hidden)
        backend.matmul(L.wUp, a.xb, n, a.up); // Wup: (intermediate, hidden)
        backend.swiglu(a.gate, a.up, n * c.intermediateSize(), a.gate); // silu(gate) * up
        backend.matmul(L.wDown, a.gate, n, a.o); // Wdown: (hidden, intermediate)
        backend.add(a.x, a.o, n * hidden);
    }

    /** Attention of sequence {@code s}'s queries over its own cache, as its policy plans layer {@code l}. */
    private void attend(int l, Sequence sq, StepRows rows, int s, Activations a) {
        int len = rows.length(s);
        int qDim = c.qDim();
        float[] qMean = null;
        if (rows.wantsQueries[s]) {
            if (a.qHost == null || a.qHost.length < len * qDim) {
                a.qHost = new float[len * qDim];
            }
            backend.read(a.q, rows.start(s) * qDim, a.qHost, 0, len * qDim);
            qMean = meanRows(a.qHost, len, qDim);
        }
        AttentionPlan plan = sq.policy().planLayer(sq.cache(), l, rows.plans[s], qMean);
        plan.requireKeptRows(l);
        if (sq.policy().offloadsMemory()) { // its stored memory is read back lazily: bring in what is planned
            java.util.List<io.engram.engine.kv.KvSpan> previous = null;
            for (java.util.List<io.engram.engine.kv.KvSpan> head : plan.spansPerKvHead()) {
                if (head == previous) {
                    continue; // heads that share one span list (a uniform plan)
                }
                previous = head;
                for (io.engram.engine.kv.KvSpan span : head) {
                    sq.cache().ensureResident(span.block(), l);
                }
            }
        }
        if (rows.sequences() == 1) {
            backend.attention(l, a.q, len, rows.seq[s], plan, rope, shape, attnScale, a.att);
        } else {
            backend.copyRows(a.q, rows.start(s), a.qOne, 0, len, qDim);
            backend.attention(l, a.qOne, len, rows.seq[s], plan, rope, shape, attnScale, a.attOne);
            backend.copyRows(a.attOne, 0, a.att, rows.start(s), len, qDim);
        }
    }

    /**
     * The logits each sequence asked for (and, for policies that score tokens, every row's), in one matmul with the
     * head over the rows needed: logits = rmsnorm(x) Whead^T, Whead: (vocab, hidden).
     */
    private void logits(List<Sequence> batch, StepRows rows, Buf x, List<Buf> tmp) {
        int hidden = c.hiddenSize();
        int vocab = c.vocabSize();
        int[] firstRow = new int[batch.size()];
        int needed = 0;
        for (int s = 0; s < batch.size(); s++) {
            int len = rows.length(s);
            Logits want = batch.get(s).policy().needsTokenScores()
                    ? Logits.ALL
                    : batch.get(s).want();
            firstRow[s] = want == Logits.NONE ? len : want == Logits.LAST ? len - 1 : 0;
            needed += len - firstRow[s];
        }
        if (needed == 0) {
            return;
        }
        Buf tail = scratch(tmp, needed * hidden);
        int r = 0;
        for (int s = 0; s < batch.size(); s++) {
            int count = rows.length(s) - firstRow[s];
            backend.copyRows(x, rows.start(s) + firstRow[s], tail, r, count, hidden);
            r += count;
        }
        backend.rmsNorm(tail, finalNorm, c.rmsEps(), needed, hidden, tail);
        Buf logits = scratch(tmp, needed * vocab);
        backend.matmul(lmHead, tail, needed, logits);
        float[] row = new float[vocab];
        r = 0;
        for (int s = 0; s < batch.size(); s++) {
            Sequence sq = batch.get(s);
            int len = rows.length(s);
            boolean scores = sq.policy().needsTokenScores();
            int callerFirst = switch (sq.want()) {
                case ALL -> 0;
                case LAST -> len - 1;
                case NONE -> len;
            };
            float[] tokenScores = scores ? new float[len] : null;
            if (scores) {
                tokenScores[0] = sq.cache().scoreNext(sq.tokens()[0]);
            }
            for (int i = firstRow[s]; i < len; i++, r++) {
                backend.read(logits, r * vocab, row, 0, vocab);
                if (scores) {
                    if (i + 1 < len) {
                        tokenScores[i + 1] = io.engram.engine.kv.TokenScores.surprise(row, sq.tokens()[i + 1]);
                    } else {
                        sq.cache().carryLogits(row);
                    }
                }
                if (i >= callerFirst) {
                    sq.sink().accept(rows.seq[s][i], row);
                }
            }
            if (scores) {
                for (KvCache.Placement p : rows.placed.get(s)) {
                    for (int j = 0; j < p.count(); j++) {
                        p.block().setScore(p.slot() + j, tokenScores[p.row() + j]);
                    }
                }
            }
        }
    }

    /** Column means of {@code rows} rows of {@code dim} floats. */
    private static float[] meanRows(float[] a, int rows, int dim) {
        float[] m = new float[dim];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < dim; j++) {
                m[j] += a[i * dim + j];
            }
        }
        float inv = 1f / rows;
        for (int j = 0; j < dim; j++) {
            m[j] *= inv;
        }
        return m;
    }
}
