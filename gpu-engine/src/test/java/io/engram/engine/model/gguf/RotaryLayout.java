package io.engram.engine.model.gguf;

/**
 * Row orders of q/k projection matrices. GGUF {@code llama} (ggml "norm" RoPE) rotates adjacent pairs
 * {@code (2i, 2i+1)} of each head; Hugging Face's {@code rotate_half} pairs {@code i} with {@code i + headDim/2}, and
 * its Llama conversion reorders the rows of every head as {@code [0, 2, 4, .., 1, 3, 5, ..]} of the GGUF order. A test
 * that converts an HF checkpoint to GGUF {@code llama} must undo that with {@link #hfToGguf}.
 */
public final class RotaryLayout {
    private RotaryLayout() {}

    /**
     * HF (rotate_half) row order to GGUF (interleaved): GGUF row {@code h*hd + 2i + p} is HF row
     * {@code h*hd + p*hd/2 + i}.
     *
     * @param w {@code [heads*headDim, cols]} row-major
     */
    public static float[] hfToGguf(float[] w, int heads, int headDim, int cols) {
        float[] out = new float[w.length];
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < headDim / 2; i++) {
                for (int p = 0; p < 2; p++) {
                    int dst = h * headDim + 2 * i + p;
                    int src = h * headDim + p * headDim / 2 + i;
                    System.arraycopy(w, src * cols, out, dst * cols, cols);
                }
            }
        }
        return out;
    }

    /** The inverse of {@link #hfToGguf}: GGUF (interleaved) row order to HF (rotate_half). */
    public static float[] ggufToHf(float[] w, int heads, int headDim, int cols) {
        float[] out = new float[w.length];
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < headDim / 2; i++) {
                for (int p = 0; p < 2; p++) {
                    int gguf = h * headDim + 2 * i + p;
                    int hf = h * headDim + p * headDim / 2 + i;
                    System.arraycopy(w, gguf * cols, out, hf * cols, cols);
                }
            }
        }
        return out;
    }
}
