package io.engram.engine.model;

import io.engram.engine.backend.Backend;
import io.engram.engine.backend.BoundWeight;
import io.engram.engine.backend.Buf;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
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

    private record Layer(BoundWeight attnNorm, BoundWeight wq, BoundWeight wk, BoundWeight wv, BoundWeight bq,
            BoundWeight bk, BoundWeight bv, BoundWeight wo, BoundWeight ffnNorm, BoundWeight wGate, BoundWeight wUp,
            BoundWeight wDown) {}

    public Transformer(ModelConfig config, ModelWeights w, Backend backend, EngineSettings settings) {
        this.c = config;
        this.backend = backend;
        this.settings = settings;
        this.rope = RopeTable.forModel(config);
        this.shape = new Backend.AttentionShape(config.heads(), config.kvHeads(), config.headDim());
        this.attnScale = (float) (1.0 / Math.sqrt(config.headDim()));
        this.embedding = backend.bind(w.embedding());
        this.finalNorm = backend.bind(w.finalNorm());
        this.lmHead = w.lmHead() == w.embedding() ? embedding : backend.bind(w.lmHead());
        this.layers = new Layer[config.layers()];
        for (int i = 0; i < layers.length; i++) {
            ModelWeights.LayerWeights l = w.layers()[i];
            layers[i] = new Layer(backend.bind(l.attnNorm()), backend.bind(l.wq()), backend.bind(l.wk()),
                    backend.bind(l.wv()), bindOrNull(l.bq()), bindOrNull(l.bk()), bindOrNull(l.bv()),
                    backend.bind(l.wo()), backend.bind(l.ffnNorm()), backend.bind(l.wGate()), backend.bind(l.wUp()),
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
    public void forward(KvCache cache, int[] tokens, long[] sources, MemoryPolicy policy, Logits wantLogits, LogitsSink sink) {
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
    public record Sequence(KvCache cache, int[] tokens, long[] sources, MemoryPolicy policy, Logits want, LogitsSink sink) {}

    /** Runs one step for each sequence; see {@link Sequence}. Sequences must use distinct caches. */
    public void forwardBatch(List<Sequence> batch) {
        for (Sequence s : batch) {
            if (s.tokens().length > settings.prefillChunk()) {
                throw new IllegalArgumentException("a batched step takes at most one prefill chunk (%d tokens) per sequence, got %d"
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

    private void runStep(List<Sequence> batch, List<Buf> tmp) {
        int seqs = batch.size();
        int hidden = c.hiddenSize();
        int qDim = c.qDim();
        int kvDim = c.kvDim();
        int inter = c.intermediateSize();
        int[] rowStart = new int[seqs + 1]; // rows [rowStart[s], rowStart[s+1]) belong to sequence s
        for (int s = 0; s < seqs; s++) {
            rowStart[s + 1] = rowStart[s] + batch.get(s).tokens().length;
        }
        int n = rowStart[seqs];
        int[] allTokens = new int[n];
        List<List<KvCache.Placement>> placed = new ArrayList<>(seqs);
        AttentionPlan[] plans = new AttentionPlan[seqs];
        boolean[] wantsQ = new boolean[seqs];
        long[][] qSeq = new long[seqs][];
        for (int s = 0; s < seqs; s++) {
            Sequence sq = batch.get(s);
            int len = sq.tokens().length;
            System.arraycopy(sq.tokens(), 0, allTokens, rowStart[s], len);
            long firstSeq = sq.cache().nextSeq();
            int[] positions = new int[len];
            qSeq[s] = new long[len];
            for (int i = 0; i < len; i++) {
                qSeq[s][i] = firstSeq + i;
                positions[i] = Math.toIntExact(firstSeq + i);
            }
            placed.add(sq.cache().append(sq.tokens(), positions, sq.sources()));
            plans[s] = sq.policy().plan(sq.cache(), firstSeq, len, c.kvHeads());
            wantsQ[s] = sq.policy().needsQueries(sq.cache(), firstSeq, len);
        }
        float[] qHost = null;

        Buf x = scratch(tmp, n * hidden); // (n, hidden) residual stream
        Buf xb = scratch(tmp, n * hidden); // (n, hidden) normed input of a sub-layer
        Buf q = scratch(tmp, n * qDim); // (n, heads*headDim)
        Buf k = scratch(tmp, n * kvDim); // (n, kvHeads*headDim)
        Buf v = scratch(tmp, n * kvDim); // (n, kvHeads*headDim)
        Buf att = scratch(tmp, n * qDim); // (n, heads*headDim)
        Buf o = scratch(tmp, n * hidden); // (n, hidden)
        Buf gate = scratch(tmp, n * inter); // (n, intermediate)
        Buf up = scratch(tmp, n * inter); // (n, intermediate)
        Buf qOne = seqs > 1 ? scratch(tmp, maxLen(rowStart) * qDim) : q; // one sequence's queries
        Buf attOne = seqs > 1 ? scratch(tmp, maxLen(rowStart) * qDim) : att; // one sequence's attention output

        backend.getRows(embedding, allTokens, x);
        for (int l = 0; l < layers.length; l++) {
            Layer L = layers[l];
            // attention: rmsnorm, q/k/v projections (+ Qwen2 biases), K/V into the caches un-rotated, attention, wo
            backend.rmsNorm(x, L.attnNorm, c.rmsEps(), n, hidden, xb);
            backend.matmul(L.wq, xb, n, q);
            backend.matmul(L.wk, xb, n, k);
            backend.matmul(L.wv, xb, n, v);
            if (L.bq != null) {
                backend.addBias(q, L.bq, n);
                backend.addBias(k, L.bk, n);
                backend.addBias(v, L.bv, n);
            }
            for (int s = 0; s < seqs; s++) {
                for (KvCache.Placement p : placed.get(s)) {
                    backend.copyRows(k, rowStart[s] + p.row(), p.block().keys(l), p.slot(), p.count(), kvDim);
                    backend.copyRows(v, rowStart[s] + p.row(), p.block().values(l), p.slot(), p.count(), kvDim);
                }
            }
            for (int s = 0; s < seqs; s++) {
                int len = rowStart[s + 1] - rowStart[s];
                Sequence sq = batch.get(s);
                float[] qMean = null;
                if (wantsQ[s]) {
                    if (qHost == null || qHost.length < len * qDim) {
                        qHost = new float[len * qDim];
                    }
                    backend.read(q, rowStart[s] * qDim, qHost, 0, len * qDim);
                    qMean = meanRows(qHost, len, qDim);
                }
                AttentionPlan plan = sq.policy().planLayer(sq.cache(), l, plans[s], qMean);
                if (seqs == 1) {
                    backend.attention(l, q, len, qSeq[s], plan, rope, shape, attnScale, att);
                } else {
                    backend.copyRows(q, rowStart[s], qOne, 0, len, qDim);
                    backend.attention(l, qOne, len, qSeq[s], plan, rope, shape, attnScale, attOne);
                    backend.copyRows(attOne, 0, att, rowStart[s], len, qDim);
                }
            }
            backend.matmul(L.wo, att, n, o);
            backend.add(x, o, n * hidden);
            // feed-forward: rmsnorm, SwiGLU, down projection
            backend.rmsNorm(x, L.ffnNorm, c.rmsEps(), n, hidden, xb);
            backend.matmul(L.wGate, xb, n, gate);
            backend.matmul(L.wUp, xb, n, up);
            backend.swiglu(gate, up, n * inter, gate);
            backend.matmul(L.wDown, gate, n, o);
            backend.add(x, o, n * hidden);
        }
        // logits of the requested rows of every sequence, in one matmul with the head
        int[] firstRow = new int[seqs];
        int rows = 0;
        for (int s = 0; s < seqs; s++) {
            int len = rowStart[s + 1] - rowStart[s];
            Logits want = batch.get(s).policy().needsTokenScores() ? Logits.ALL : batch.get(s).want();
            firstRow[s] = want == Logits.NONE ? len : want == Logits.LAST ? len - 1 : 0;
            rows += len - firstRow[s];
        }
        if (rows == 0) {
            afterStep(batch, qSeq);
            return;
        }
        Buf tail = scratch(tmp, rows * hidden);
        int r = 0;
        for (int s = 0; s < seqs; s++) {
            int len = rowStart[s + 1] - rowStart[s];
            backend.copyRows(x, rowStart[s] + firstRow[s], tail, r, len - firstRow[s], hidden);
            r += len - firstRow[s];
        }
        backend.rmsNorm(tail, finalNorm, c.rmsEps(), rows, hidden, tail);
        Buf logits = scratch(tmp, rows * c.vocabSize());
        backend.matmul(lmHead, tail, rows, logits);
        float[] row = new float[c.vocabSize()];
        r = 0;
        for (int s = 0; s < seqs; s++) {
            Sequence sq = batch.get(s);
            int len = rowStart[s + 1] - rowStart[s];
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
                backend.read(logits, r * c.vocabSize(), row, 0, c.vocabSize());
                if (scores) {
                    if (i + 1 < len) {
                        tokenScores[i + 1] = io.engram.engine.kv.TokenScores.surprise(row, sq.tokens()[i + 1]);
                    } else {
                        sq.cache().carryLogits(row);
                    }
                }
                if (i >= callerFirst) {
                    sq.sink().accept(qSeq[s][i], row);
                }
            }
            if (scores) {
                for (KvCache.Placement p : placed.get(s)) {
                    for (int j = 0; j < p.count(); j++) {
                        p.block().setScore(p.slot() + j, tokenScores[p.row() + j]);
                    }
                }
            }
        }
        afterStep(batch, qSeq);
    }

    private static void afterStep(List<Sequence> batch, long[][] qSeq) {
        for (int s = 0; s < batch.size(); s++) {
            Sequence sq = batch.get(s);
            sq.policy().afterStep(sq.cache(), qSeq[s][0], qSeq[s].length);
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

    private static int maxLen(int[] rowStart) {
        int m = 0;
        for (int s = 0; s + 1 < rowStart.length; s++) {
            m = Math.max(m, rowStart[s + 1] - rowStart[s]);
        }
        return m;
    }
}
