package io.engram.engine.model;

import io.engram.engine.backend.Backend;
import io.engram.engine.backend.BoundWeight;
import io.engram.engine.backend.Buf;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
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
        int n = tokens.length;
        int hidden = c.hiddenSize();
        int qDim = c.qDim();
        int kvDim = c.kvDim();
        int inter = c.intermediateSize();
        long firstSeq = cache.nextSeq();
        int[] positions = new int[n];
        long[] qSeq = new long[n];
        for (int i = 0; i < n; i++) {
            qSeq[i] = firstSeq + i;
            positions[i] = Math.toIntExact(firstSeq + i);
        }
        List<KvCache.Placement> placed = cache.append(tokens, positions, sources);
        AttentionPlan plan = policy.plan(cache, firstSeq, n, c.kvHeads());

        Buf x = backend.allocate(n * hidden); // (n, hidden) residual stream
        Buf xb = backend.allocate(n * hidden); // (n, hidden) normed input of a sub-layer
        Buf q = backend.allocate(n * qDim); // (n, heads*headDim)
        Buf k = backend.allocate(n * kvDim); // (n, kvHeads*headDim)
        Buf v = backend.allocate(n * kvDim); // (n, kvHeads*headDim)
        Buf att = backend.allocate(n * qDim); // (n, heads*headDim)
        Buf o = backend.allocate(n * hidden); // (n, hidden)
        Buf gate = backend.allocate(n * inter); // (n, intermediate)
        Buf up = backend.allocate(n * inter); // (n, intermediate)

        backend.getRows(embedding, tokens, x);
        for (int l = 0; l < layers.length; l++) {
            Layer L = layers[l];
            // attention: rmsnorm, q/k/v projections (+ Qwen2 biases), K/V into the cache un-rotated, attention, wo
            backend.rmsNorm(x, L.attnNorm, c.rmsEps(), n, hidden, xb);
            backend.matmul(L.wq, xb, n, q);
            backend.matmul(L.wk, xb, n, k);
            backend.matmul(L.wv, xb, n, v);
            if (L.bq != null) {
                backend.addBias(q, L.bq, n);
                backend.addBias(k, L.bk, n);
                backend.addBias(v, L.bv, n);
            }
            for (KvCache.Placement p : placed) {
                backend.copyRows(k, p.row(), p.block().keys(l), p.slot(), p.count(), kvDim);
                backend.copyRows(v, p.row(), p.block().values(l), p.slot(), p.count(), kvDim);
            }
            backend.attention(l, q, n, qSeq, plan, rope, shape, attnScale, att);
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
        if (want == Logits.NONE) {
            return;
        }
        int first = want == Logits.LAST ? n - 1 : 0;
        int rows = n - first;
        Buf tail = backend.allocate(rows * hidden);
        backend.copyRows(x, first, tail, 0, rows, hidden);
        backend.rmsNorm(tail, finalNorm, c.rmsEps(), rows, hidden, tail);
        Buf logits = backend.allocate(rows * c.vocabSize());
        backend.matmul(lmHead, tail, rows, logits);
        float[] row = new float[c.vocabSize()];
        for (int i = 0; i < rows; i++) {
            backend.read(logits, i * c.vocabSize(), row, 0, c.vocabSize());
            sink.accept(firstSeq + first + i, row);
        }
    }
}
