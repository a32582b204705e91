package io.engram.engine.generate;

import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Transformer;
import java.util.Arrays;

/**
 * Autoregressive generation over a session's KV cache: prefills the prompt (chunked), then decodes one token per
 * step until EOS, a stop token, a stop string or the token limit. The prompt and every generated token but the last
 * are appended to the cache like any other input (the caller decides whether the cache is kept). Not thread-safe.
 */
public final class Generator {
    private final Transformer model;
    private final int vocabLimit;

    /** A generator that may produce any id of the model's vocabulary. */
    public Generator(Transformer model) {
        this(model, model.config().vocabSize());
    }

    /**
     * A generator that never produces ids at or above {@code vocabLimit}: models often have more embedding rows than
     * their tokenizer has tokens (padding to a multiple of 64 or 128), and those ids cannot be decoded.
     */
    public Generator(Transformer model, int vocabLimit) {
        if (vocabLimit < 1 || vocabLimit > model.config().vocabSize()) {
            throw new IllegalArgumentException("vocab limit %d outside [1, %d]".formatted(vocabLimit, model.config().vocabSize()));
        }
        this.model = model;
        this.vocabLimit = vocabLimit;
    }

    public Generation generate(KvCache cache, int[] prompt, long[] promptSources, MemoryPolicy policy, SamplingOptions options,
            Detokenizer detokenizer, TokenListener listener) {
        if (prompt.length == 0 && cache.nextSeq() == 0) {
            throw new IllegalArgumentException("nothing to condition on: empty prompt and empty cache");
        }
        Sampler sampler = new Sampler(options);
        float[][] last = new float[1][];
        long t0 = System.nanoTime();
        if (prompt.length > 0) {
            model.forward(cache, prompt, promptSources, policy, Transformer.Logits.LAST, (seq, l) -> last[0] = l.clone());
        } else {
            throw new IllegalArgumentException("generation needs at least one prompt token to produce logits");
        }
        long t1 = System.nanoTime();
        int[] tokens = new int[Math.min(options.maxNewTokens(), 1 << 16)];
        double[] lps = new double[tokens.length];
        double[] ents = new double[tokens.length];
        StringBuilder text = new StringBuilder();
        int n = 0;
        Generation.StopReason reason = Generation.StopReason.MAX_TOKENS;
        int emitted = 0; // chars of text already passed to the listener
        while (n < options.maxNewTokens()) {
            if (vocabLimit < last[0].length) {
                java.util.Arrays.fill(last[0], vocabLimit, last[0].length, Float.NEGATIVE_INFINITY);
            }
            Sampler.Choice c = sampler.next(last[0]);
            if (options.stopAtEos() && model.config().isEos(c.token())) {
                reason = Generation.StopReason.EOS;
                break;
            }
            if (options.stopTokens().contains(c.token())) {
                reason = Generation.StopReason.STOP_TOKEN;
                break;
            }
            if (n == tokens.length) {
                tokens = Arrays.copyOf(tokens, n * 2);
                lps = Arrays.copyOf(lps, n * 2);
                ents = Arrays.copyOf(ents, n * 2);
            }
            tokens[n] = c.token();
            lps[n] = c.logProb();
            ents[n] = c.entropy();
            n++;
            String delta = detokenizer.next(c.token());
            int before = text.length();
            text.append(delta);
            int cut = stopIndex(text, options, before);
            if (cut >= 0) {
                text.setLength(cut);
                listener.onToken(c.token(), text.substring(Math.min(emitted, cut)), c.logProb());
                emitted = cut;
                reason = Generation.StopReason.STOP_STRING;
                break;
            }
            // hold back a tail that may still grow into a stop string, so listeners never see text that is cut later
            int safe = text.length() - partialStopSuffix(text, options);
            listener.onToken(c.token(), safe > emitted ? text.substring(emitted, safe) : "", c.logProb());
            emitted = Math.max(emitted, safe);
            if (n == options.maxNewTokens()) {
                break;
            }
            model.forward(cache, new int[] {c.token()}, null, policy, Transformer.Logits.LAST, (seq, l) -> last[0] = l.clone());
        }
        if (reason != Generation.StopReason.STOP_STRING && emitted < text.length() && n > 0) {
            listener.onToken(-1, text.substring(emitted), 0); // flush held-back text; -1: no new token
        }
        long t2 = System.nanoTime();
        return new Generation(Arrays.copyOf(tokens, n), Arrays.copyOf(lps, n), Arrays.copyOf(ents, n), text.toString(), reason,
                prompt.length, t1 - t0, t2 - t1);
    }

    /** Length of the longest suffix of {@code text} that is a proper prefix of a stop string. */
    private static int partialStopSuffix(StringBuilder text, SamplingOptions o) {
        int best = 0;
        for (String s : o.stopStrings()) {
            for (int k = Math.min(s.length() - 1, text.length()); k > best; k--) {
                if (text.substring(text.length() - k).equals(s.substring(0, k))) {
                    best = k;
                    break;
                }
            }
        }
        return best;
    }

    /** Start of the earliest stop string that ends at or after {@code from}, or -1. */
    private static int stopIndex(StringBuilder text, SamplingOptions o, int from) {
        int best = -1;
        for (String s : o.stopStrings()) {
            int i = text.indexOf(s, Math.max(0, from - s.length() + 1));
            if (i >= 0 && (best < 0 || i < best)) {
                best = i;
            }
        }
        return best;
    }
}
