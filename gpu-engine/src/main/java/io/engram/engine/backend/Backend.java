package io.engram.engine.backend;

import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.BufferSpace;
import io.engram.engine.tensor.WeightTensor;

/**
 * The op vocabulary of the engine, implemented once per backend (reference, CPU, CUDA). Names follow ggml:
 * {@code get_rows, rms_norm, matmul, add, swiglu, copy_rows, attention}. Activations are F32 row-major
 * {@code (n, dim)} buffers; weights stay in their storage type and are decoded inside the ops.
 *
 * <p>Threading: a backend instance is used by one caller thread at a time; it may use its own worker threads inside
 * an op. Buffers and bound weights belong to the backend that made them.
 */
public interface Backend extends BufferSpace, AutoCloseable {

    enum Kind {
        REFERENCE,
        CPU,
        CUDA
    }

    Kind kind();

    /** One line for logs: kind, threads or device. */
    String describe();

    Buf allocate(int floats);

    /**
     * A buffer for the K or V rows of one layer of a KV block. Backends that manage KV memory apart from activations
     * (the CUDA backend's device pool, with eviction to host) override this; the others allocate as usual.
     */
    @Override
    default Buf allocateKv(int floats) {
        return allocate(floats);
    }

    /**
     * Returns a buffer this backend allocated, once no op issued later will use it (a forward step's scratch). Host
     * backends leave heap buffers to the garbage collector; device backends reuse the memory at once.
     */
    default void free(Buf b) {}

    @Override
    void write(Buf dst, int dstOff, float[] src, int srcOff, int len);

    @Override
    void read(Buf src, int srcOff, float[] dst, int dstOff, int len);

    /** Prepares a weight for this backend. The tensor's memory must outlive the returned handle. */
    BoundWeight bind(WeightTensor tensor);

    /** {@code out[i,:] = table[ids[i],:]} decoded to F32; out is (ids.length, table.cols). */
    void getRows(BoundWeight table, int[] ids, Buf out);

    /** {@code out[i,:] = x[i,:] / sqrt(mean(x[i,:]^2) + eps) * gamma}, for {@code n} rows of {@code dim}. */
    void rmsNorm(Buf x, BoundWeight gamma, float eps, int n, int dim, Buf out);

    /** {@code out (n, w.rows) = x (n, w.cols) · wᵀ}. */
    void matmul(BoundWeight w, Buf x, int n, Buf out);

    /** {@code x[i,:] += bias} for n rows of bias.cols. */
    void addBias(Buf x, BoundWeight bias, int n);

    /** {@code acc[0..len) += x[0..len)}. */
    void add(Buf acc, Buf x, int len);

    /** {@code out = silu(gate) * up}, elementwise over len. */
    void swiglu(Buf gate, Buf up, int len, Buf out);

    /** Copies {@code rows} rows of {@code rowLen} floats from {@code src} at row {@code srcRow} to {@code dst} at row {@code dstRow}. */
    @Override
    void copyRows(Buf src, int srcRow, Buf dst, int dstRow, int rows, int rowLen);

    /**
     * Multi-segment causal attention with RoPE applied at attention time.
     *
     * <p>For each query token i (un-rotated, in {@code q (n, heads*headDim)}), rotated at
     * {@code plan.queryPositions()[i]}, and each query head h with KV head {@code g = h / (heads/kvHeads)}: one softmax
     * over the keys of {@code plan.spans(g)} of layer {@code layer} whose sequence index is at most {@code qSeq[i]},
     * each key rotated at its span's position, scores scaled by {@code scale}; the output row is the weighted sum of
     * the values. A query with no visible key is an error.
     *
     * @param out (n, heads*headDim)
     */
    void attention(
            int layer,
            Buf q,
            int n,
            long[] qSeq,
            AttentionPlan plan,
            RopeTable rope,
            AttentionShape shape,
            float scale,
            Buf out);

    /** Head counts of an attention call. */
    record AttentionShape(int heads, int kvHeads, int headDim) {
        public int qDim() {
            return heads * headDim;
        }

        public int kvDim() {
            return kvHeads * headDim;
        }
    }

    @Override
    void close();
}
