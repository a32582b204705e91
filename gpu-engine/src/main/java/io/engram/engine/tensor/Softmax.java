package io.engram.engine.tensor;

/**
 * The log-softmax of a logit row, in double, written once: token scores (surprise), the sampler's log-probability and
 * entropy, and the memory bench's divergence all read it from here.
 */
public final class Softmax {
    private Softmax() {}

    /** {@code log sum_i exp(x[i])} over the first {@code n} values, stable (the maximum is taken out first). */
    public static double logSumExp(float[] x, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[i]);
        }
        if (max == Double.NEGATIVE_INFINITY) {
            return max;
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(x[i] - max);
        }
        return max + Math.log(sum);
    }

    /** {@code x[i] - logSumExp(x)} for the first {@code n} values. */
    public static double[] logSoftmax(float[] x, int n) {
        double lse = logSumExp(x, n);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = x[i] - lse;
        }
        return out;
    }
}
