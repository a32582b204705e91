package io.engram.engine.kv;

/** Per-token scores the memory policies keep with the tokens (EM-LLM surprise, SirLLM token entropy). */
public final class TokenScores {
    private TokenScores() {}

    /** Self-information of {@code token} under {@code logits}: {@code -log softmax(logits)[token]}, summed in double. */
    public static float surprise(float[] logits, int token) {
        return (float) (io.engram.engine.tensor.Softmax.logSumExp(logits, logits.length) - logits[token]);
    }
}
