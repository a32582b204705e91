package io.engram.engine.bench;

import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.model.Transformer;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Measures prefill and decode throughput of a {@link Transformer} at given context lengths, with warm-up and repeated
 * runs (median and worst reported). Library code: returns numbers, prints nothing; the CLI formats the table.
 */
public final class EngineBench {

    /** One measured phase. Throughputs in tokens per second. */
    public record Row(
            String phase,
            int context,
            int tokens,
            int runs,
            double medianTokPerSec,
            double worstTokPerSec,
            long kvBytes) {}

    private final Transformer model;
    private final int warmups;
    private final int runs;

    public EngineBench(Transformer model, int warmups, int runs) {
        if (runs < 1 || warmups < 0) {
            throw new IllegalArgumentException("runs must be >= 1 and warm-ups >= 0");
        }
        this.model = model;
        this.warmups = warmups;
        this.runs = runs;
    }

    /** Prefill of {@code context} tokens into an empty cache. */
    public Row prefill(int context) {
        int[] tokens = randomTokens(context, 1);
        double[] rates = new double[runs];
        long kvBytes = 0;
        for (int r = -warmups; r < runs; r++) {
            KvCache cache = model.newCache();
            long t0 = System.nanoTime();
            model.forward(cache, tokens, null, new FullAttention(), Transformer.Logits.LAST, (s, l) -> {});
            long dt = System.nanoTime() - t0;
            if (r >= 0) {
                rates[r] = context / (dt / 1e9);
            }
            kvBytes = cache.blocks().size() * cache.floatsPerBlock() * 4;
        }
        return row("prefill", context, context, rates, kvBytes);
    }

    /** {@code steps} single-token decode steps after a prefill of {@code context} tokens. */
    public Row decode(int context, int steps) {
        int[] tokens = randomTokens(context, 2);
        double[] rates = new double[runs];
        long kvBytes = 0;
        for (int r = -warmups; r < runs; r++) {
            KvCache cache = model.newCache();
            model.forward(cache, tokens, null, new FullAttention(), Transformer.Logits.NONE, (s, l) -> {});
            int[] next = {tokens[tokens.length - 1]};
            long t0 = System.nanoTime();
            for (int i = 0; i < steps; i++) {
                model.forward(
                        cache, next, null, new FullAttention(), Transformer.Logits.LAST, (s, l) -> next[0] = argmax(l));
            }
            long dt = System.nanoTime() - t0;
            if (r >= 0) {
                rates[r] = steps / (dt / 1e9);
            }
            kvBytes = cache.blocks().size() * cache.floatsPerBlock() * 4;
        }
        return row("decode", context, steps, rates, kvBytes);
    }

    private Row row(String phase, int context, int tokens, double[] rates, long kvBytes) {
        double[] s = rates.clone();
        Arrays.sort(s);
        return new Row(phase, context, tokens, runs, s[s.length / 2], s[0], kvBytes);
    }

    private int[] randomTokens(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = r.nextInt(model.config().vocabSize());
        }
        return t;
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
