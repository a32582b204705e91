package io.engram.engine.kv;

/** Per-token scores the memory policies keep with the tokens (EM-LLM surprise, SirLLM token entropy). */
public final class TokenScores {
    private TokenScores() {}

    /** Self-information of {@code token} under {@code logits}: {@code -log softmax(logits)[token]}, summed in double. */
    public static float surprise(float[] logits, int token) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : logits) {
            sum += Math.exp(v - max);
        }
        return (float) (Math.log(sum) + max - logits[token]);
    }
}
