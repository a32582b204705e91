package io.engram.engine.generate;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: greedy (temperature 0, lowest id on ties) or seeded sampling with temperature,
 * top-k and top-p. Also computes the log-probability of the chosen token under the unmodified distribution
 * (temperature 1, no truncation), which surprise, entropy and attribution code consume. Not thread-safe.
 */
public final class Sampler {
    private final SamplingOptions options;
    private final SplittableRandom random;

    public Sampler(SamplingOptions options) {
        this.options = options;
        this.random = new SplittableRandom(options.seed());
    }

    /** A chosen token, its natural log-probability and the entropy (nats) of the full distribution. */
    public record Choice(int token, double logProb, double entropy) {}

    public Choice next(float[] logits) {
        int token = options.temperature() == 0 ? argmax(logits) : sample(logits);
        double logZ = io.engram.engine.tensor.Softmax.logSumExp(logits, logits.length);
        double entropy = 0;
        for (float l : logits) {
            if (l != Float.NEGATIVE_INFINITY) { // masked ids carry no probability
                double lp = l - logZ;
                entropy -= Math.exp(lp) * lp;
            }
        }
        return new Choice(token, logits[token] - logZ, entropy);
    }

    static int argmax(float[] v) {
        return argmax(v, v.length);
    }

    /** The index of the largest of {@code v[0..n)}, the lowest on ties (greedy choice over the first n ids). */
    public static int argmax(float[] v, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    private int sample(float[] logits) {
        int n = logits.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        // stable: equal logits keep id order, so a seed always gives the same choice
        Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        int keep = options.topK() > 0 ? Math.min(options.topK(), n) : n;
        double t = options.temperature();
        double max = logits[order[0]] / t;
        double[] p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            p[i] = Math.exp(logits[order[i]] / t - max);
            sum += p[i];
        }
        if (options.topP() < 1) {
            double cum = 0;
            int cut = keep;
            for (int i = 0; i < keep; i++) {
                cum += p[i] / sum;
                if (cum >= options.topP()) {
                    cut = i + 1;
                    break;
                }
            }
            keep = cut;
            sum = 0;
            for (int i = 0; i < keep; i++) {
                sum += p[i];
            }
        }
        double r = random.nextDouble() * sum;
        for (int i = 0; i < keep; i++) {
            r -= p[i];
            if (r < 0) {
                return order[i];
            }
        }
        return order[keep - 1];
    }
}
