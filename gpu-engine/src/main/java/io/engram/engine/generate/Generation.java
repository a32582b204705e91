package io.engram.engine.generate;

/**
 * The outcome of one generation.
 *
 * @param tokens generated ids (the stop token, if any, excluded)
 * @param logProbs natural log-probability of each generated token
 * @param entropies entropy (nats) of the distribution each token was drawn from
 * @param text decoded output, cut before a matched stop string
 */
public record Generation(
        int[] tokens,
        double[] logProbs,
        double[] entropies,
        String text,
        StopReason stopReason,
        int promptTokens,
        long prefillNanos,
        long decodeNanos) {

    public enum StopReason {
        EOS,
        STOP_TOKEN,
        STOP_STRING,
        MAX_TOKENS
    }
}
