package io.engram.engine.backend;

/**
 * Rotary embedding angles of one model: {@code angle(pos, i) = pos * invFreq[i]} for {@code i < headDim/2}, with the
 * model's {@code rope_scaling} already folded into {@code invFreq}. Cosines and sines are cached for positions below
 * {@link #cachedPositions()} and computed on the fly above. Immutable and thread-safe.
 */
public final class RopeTable {
    private final RopeStyle style;
    private final int headDim;
    private final double[] invFreq; // (headDim/2)
    private final int cachedPositions;
    private final float[] cos; // (cachedPositions, headDim/2)
    private final float[] sin; // (cachedPositions, headDim/2)

    public RopeTable(RopeStyle style, int headDim, double[] invFreq, int cachedPositions) {
        this.style = style;
        this.headDim = headDim;
        this.invFreq = invFreq.clone();
        this.cachedPositions = cachedPositions;
        int half = headDim / 2;
        this.cos = new float[cachedPositions * half];
        this.sin = new float[cachedPositions * half];
        for (int p = 0; p < cachedPositions; p++) {
            for (int i = 0; i < half; i++) {
                // angle in float32 as the reference implementations compute it (position * inv_freq in fp32)
                float angle = (float) p * (float) invFreq[i];
                cos[p * half + i] = (float) Math.cos(angle);
                sin[p * half + i] = (float) Math.sin(angle);
            }
        }
    }

    public RopeStyle style() {
        return style;
    }

    public int headDim() {
        return headDim;
    }

    public int cachedPositions() {
        return cachedPositions;
    }

    /** Inverse frequencies, (headDim/2). A copy. */
    public double[] inverseFrequencies() {
        return invFreq.clone();
    }

    /** Fills {@code cs[0..half)} with cosines and {@code sn[0..half)} with sines of the angles at {@code pos}. */
    public void angles(int pos, float[] cs, float[] sn) {
        int half = headDim / 2;
        if (pos >= 0 && pos < cachedPositions) {
            System.arraycopy(cos, pos * half, cs, 0, half);
            System.arraycopy(sin, pos * half, sn, 0, half);
            return;
        }
        for (int i = 0; i < half; i++) {
            float angle = (float) pos * (float) invFreq[i];
            cs[i] = (float) Math.cos(angle);
            sn[i] = (float) Math.sin(angle);
        }
    }

    /**
     * Rotates one head vector {@code x[off..off+headDim)} in place by the angles {@code cs/sn}. The one scalar
     * definition of RoPE; backends may vectorise it but must agree with it.
     */
    public void rotate(float[] x, int off, float[] cs, float[] sn) {
        int half = headDim / 2;
        if (style == RopeStyle.HALF) {
            for (int i = 0; i < half; i++) {
                float a = x[off + i];
                float b = x[off + i + half];
                x[off + i] = a * cs[i] - b * sn[i];
                x[off + i + half] = b * cs[i] + a * sn[i];
            }
        } else {
            for (int i = 0; i < half; i++) {
                float a = x[off + 2 * i];
                float b = x[off + 2 * i + 1];
                x[off + 2 * i] = a * cs[i] - b * sn[i];
                x[off + 2 * i + 1] = b * cs[i] + a * sn[i];
            }
        }
    }
}
