package io.engram.engine.generate;

/** Receives each generated token as it is chosen, on the generating thread. */
@FunctionalInterface
public interface TokenListener {
    /**
     * @param token the token id, or -1 for a final call that only releases text held back while it could have
     *     become a stop string
     * @param text the text it adds to the output (possibly empty)
     * @param logProb natural log-probability of the token under the model (temperature 1)
     */
    void onToken(int token, String text, double logProb);

    TokenListener NONE = (t, s, p) -> {};
}
