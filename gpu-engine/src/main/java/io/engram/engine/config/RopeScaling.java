package io.engram.engine.config;

/** How rotary frequencies are adjusted for context extension (Hugging Face {@code rope_scaling}). */
public sealed interface RopeScaling {
    /** Plain RoPE. */
    record None() implements RopeScaling {}

    /** Positions divided by {@code factor} (HF "linear"). */
    record Linear(double factor) implements RopeScaling {}

    /** Llama 3.1 frequency-dependent scaling (HF "llama3"). */
    record Llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions)
            implements RopeScaling {}

    /**
     * Inverse frequencies {@code theta^(-2i/d)} for {@code i < d/2}, adjusted by this scaling, in double precision.
     */
    default double[] inverseFrequencies(double theta, int rotaryDim) {
        double[] inv = new double[rotaryDim / 2];
        for (int i = 0; i < inv.length; i++) {
            // float32 exponent like the reference implementations, so long positions agree closely
            inv[i] = 1.0 / Math.pow(theta, (float) (2 * i) / (float) rotaryDim);
        }
        switch (this) {
            case None n -> {}
            case Linear l -> {
                for (int i = 0; i < inv.length; i++) {
                    inv[i] /= l.factor();
                }
            }
            case Llama3 s -> {
                double lowWavelen = s.originalMaxPositions() / s.lowFreqFactor();
                double highWavelen = s.originalMaxPositions() / s.highFreqFactor();
                for (int i = 0; i < inv.length; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen < highWavelen) {
                        continue;
                    }
                    if (wavelen > lowWavelen) {
                        inv[i] /= s.factor();
                    } else {
                        double smooth = (s.originalMaxPositions() / wavelen - s.lowFreqFactor())
                                / (s.highFreqFactor() - s.lowFreqFactor());
                        inv[i] = (1 - smooth) * inv[i] / s.factor() + smooth * inv[i];
                    }
                }
            }
        }
        return inv;
    }
}
