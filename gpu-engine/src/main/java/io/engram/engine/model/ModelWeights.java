package io.engram.engine.model;

import io.engram.engine.config.ModelConfig;
import io.engram.engine.config.ModelFormatException;
import io.engram.engine.tensor.WeightTensor;

/**
 * The weights of a Llama-family decoder in their storage types. Matrices are {@code [out, in]}.
 *
 * @param embedding (vocab, hidden)
 * @param finalNorm (hidden)
 * @param lmHead (vocab, hidden); the embedding itself when tied
 */
public record ModelWeights(WeightTensor embedding, LayerWeights[] layers, WeightTensor finalNorm, WeightTensor lmHead) {

    /**
     * One decoder layer. Biases are null unless the architecture has them (Qwen2 q/k/v).
     *
     * @param attnNorm (hidden)
     * @param wq (heads*headDim, hidden)
     * @param wk (kvHeads*headDim, hidden)
     * @param wv (kvHeads*headDim, hidden)
     * @param wo (hidden, heads*headDim)
     * @param ffnNorm (hidden)
     * @param wGate (intermediate, hidden)
     * @param wUp (intermediate, hidden)
     * @param wDown (hidden, intermediate)
     */
    public record LayerWeights(
            WeightTensor attnNorm,
            WeightTensor wq,
            WeightTensor wk,
            WeightTensor wv,
            WeightTensor bq,
            WeightTensor bk,
            WeightTensor bv,
            WeightTensor wo,
            WeightTensor ffnNorm,
            WeightTensor wGate,
            WeightTensor wUp,
            WeightTensor wDown) {}

    /** Checks every shape against {@code c}; @throws ModelFormatException naming the first tensor that disagrees */
    public void validate(ModelConfig c, java.nio.file.Path file) {
        check(file, embedding, c.vocabSize(), c.hiddenSize());
        check(file, lmHead, c.vocabSize(), c.hiddenSize());
        check(file, finalNorm, -1, c.hiddenSize());
        for (LayerWeights l : layers) {
            check(file, l.attnNorm, -1, c.hiddenSize());
            check(file, l.wq, c.qDim(), c.hiddenSize());
            check(file, l.wk, c.kvDim(), c.hiddenSize());
            check(file, l.wv, c.kvDim(), c.hiddenSize());
            check(file, l.wo, c.hiddenSize(), c.qDim());
            check(file, l.ffnNorm, -1, c.hiddenSize());
            check(file, l.wGate, c.intermediateSize(), c.hiddenSize());
            check(file, l.wUp, c.intermediateSize(), c.hiddenSize());
            check(file, l.wDown, c.hiddenSize(), c.intermediateSize());
            if (c.qkvBias()) {
                check(file, l.bq, -1, c.qDim());
                check(file, l.bk, -1, c.kvDim());
                check(file, l.bv, -1, c.kvDim());
            }
        }
    }

    private static void check(java.nio.file.Path file, WeightTensor t, int rows, int cols) {
        if (t == null) {
            throw new ModelFormatException(file, "a required tensor is missing");
        }
        boolean ok = rows < 0
                ? t.shape().length == 1 && t.cols() == cols
                : t.shape().length == 2 && t.rows() == rows && t.cols() == cols;
        if (!ok) {
            throw new ModelFormatException(
                    file,
                    "tensor '%s' has shape %s; expected %s"
                            .formatted(
                                    t.name(),
                                    java.util.Arrays.toString(t.shape()),
                                    rows < 0 ? "[" + cols + "]" : "[" + rows + ", " + cols + "]"));
        }
    }
}
