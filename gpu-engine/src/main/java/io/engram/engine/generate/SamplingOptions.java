package io.engram.engine.generate;

import java.util.List;

/**
 * How tokens are chosen and when generation stops.
 *
 * @param temperature 0 for greedy; otherwise logits are divided by it before top-k / top-p
 * @param topK keep only the k most likely tokens (0 = off)
 * @param topP keep the smallest set of tokens whose probability reaches p (1 = off)
 * @param seed seed of the sampler's random stream; equal seeds give equal outputs
 * @param maxNewTokens generation stops after this many tokens
 * @param stopTokens token ids that end generation (in addition to the model's EOS ids when {@code stopAtEos})
 * @param stopStrings generation ends when the output text contains one; the text is cut before it
 */
public record SamplingOptions(
        double temperature,
        int topK,
        double topP,
        long seed,
        int maxNewTokens,
        List<Integer> stopTokens,
        List<String> stopStrings,
        boolean stopAtEos) {

    public SamplingOptions {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be a finite number >= 0, got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top-k must be >= 0 (0 = off), got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        }
        if (maxNewTokens < 0) {
            throw new IllegalArgumentException("max new tokens must be >= 0, got " + maxNewTokens);
        }
        stopTokens = List.copyOf(stopTokens);
        stopStrings = List.copyOf(stopStrings);
        for (String s : stopStrings) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("a stop string must not be empty");
            }
        }
    }

    public static SamplingOptions greedy(int maxNewTokens) {
        return new SamplingOptions(0, 0, 1, 0, maxNewTokens, List.of(), List.of(), true);
    }

    public SamplingOptions withSampling(double temperature, int topK, double topP, long seed) {
        return new SamplingOptions(temperature, topK, topP, seed, maxNewTokens, stopTokens, stopStrings, stopAtEos);
    }

    public SamplingOptions withStops(List<Integer> tokens, List<String> strings) {
        return new SamplingOptions(temperature, topK, topP, seed, maxNewTokens, tokens, strings, stopAtEos);
    }

    public SamplingOptions withStopAtEos(boolean stop) {
        return new SamplingOptions(temperature, topK, topP, seed, maxNewTokens, stopTokens, stopStrings, stop);
    }
}
