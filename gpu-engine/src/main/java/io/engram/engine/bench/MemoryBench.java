package io.engram.engine.bench;

import io.engram.engine.generate.Sampler;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Transformer;
import io.engram.engine.tokenizer.StreamingDecoder;
import io.engram.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;

/**
 * Streams generated long inputs ({@link LongInputTasks}) through the engine with each memory policy and measures:
 * task accuracy (greedy answer), agreement with full attention where full attention runs (top-1 agreement and mean
 * KL(full || policy) of the next-token distributions along the gold answer, teacher-forced), peak KV bytes the engine
 * held on its backend, bytes offloaded to the unit store, and time per token. Full attention itself runs only up to the
 * full-attention limit (it is quadratic and its memory unbounded). Not a test: a measurement.
 */
public final class MemoryBench {

    /** A policy under test. Instances hold no per-session state (that lives in each cache), so one serves all runs. */
    public record Candidate(String name, MemoryPolicy policy) {}

    /**
     * One table row: means over the samples of a (task, length, depth, policy).
     *
     * @param top1Agreement NaN when full attention did not run at this length
     * @param meanKl NaN when full attention did not run at this length
     */
    public record Row(
            LongInputTasks.Kind task,
            int length,
            double depth,
            String policy,
            int samples,
            int promptTokens,
            double accuracy,
            double top1Agreement,
            double meanKl,
            long peakEngineBytes,
            long storeBytes,
            double prefillMsPerToken,
            double decodeMsPerToken) {}

    private final Transformer model;
    private final Tokenizer tokenizer;
    private final int maxNewTokens;
    private final int decodeTokens;
    private final int fullMaxTokens;
    private final int vocab;

    /**
     * @param maxNewTokens greedy answer length cap
     * @param decodeTokens tokens each input decodes for the decode column: the answer, then greedy continuation (at
     *     least the answer's tokens), so that the rate is the steady one and not the first steps' after the prompt
     * @param fullMaxTokens longest prompt full attention runs on as the reference (it is quadratic and unbounded)
     */
    public MemoryBench(Transformer model, Tokenizer tokenizer, int maxNewTokens, int decodeTokens, int fullMaxTokens) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.maxNewTokens = maxNewTokens;
        this.decodeTokens = decodeTokens;
        this.fullMaxTokens = fullMaxTokens;
        this.vocab = Math.min(model.config().vocabSize(), tokenizer.vocabSize());
    }

    /** Runs every task x length x depth x policy with {@code samples} generated inputs each. */
    public List<Row> run(
            List<LongInputTasks.Kind> tasks,
            int[] lengths,
            double[] depths,
            int samples,
            List<Candidate> policies,
            long seed,
            Consumer<String> progress) {
        LongInputTasks gen = new LongInputTasks(tokenizer);
        List<Row> rows = new ArrayList<>();
        for (LongInputTasks.Kind task : tasks) {
            for (int length : lengths) {
                for (double depth : depths) {
                    Acc[] acc = new Acc[policies.size()];
                    for (int p = 0; p < acc.length; p++) {
                        acc[p] = new Acc();
                    }
                    int promptTokens = 0;
                    for (int s = 0; s < samples; s++) {
                        Random rnd =
                                new Random(seed + 7919L * s + 31L * length + Math.round(depth * 1000) + task.ordinal());
                        LongInputTasks.Sample sample = gen.generate(task, length, depth, rnd);
                        int[] prompt = tokenizer.encode(sample.prompt(), true);
                        promptTokens = prompt.length;
                        int[] gold = tokenizer.encode(" " + String.join(" ", sample.answers()), false);
                        float[][] reference = prompt.length <= fullMaxTokens
                                ? teacherForced(new FullAttention(), prompt, gold, null)
                                : null;
                        for (int p = 0; p < policies.size(); p++) {
                            if (policies.get(p).policy() instanceof FullAttention && prompt.length > fullMaxTokens) {
                                progress.accept("skipping full attention at %d tokens (over the full-attention limit)"
                                        .formatted(prompt.length));
                                acc[p].skipped = true;
                                continue;
                            }
                            progress.accept("%s %d tokens depth %.2f sample %d/%d: %s"
                                    .formatted(
                                            task,
                                            prompt.length,
                                            depth,
                                            s + 1,
                                            samples,
                                            policies.get(p).name()));
                            measure(policies.get(p).policy(), prompt, gold, sample, reference, acc[p]);
                        }
                    }
                    for (int p = 0; p < policies.size(); p++) {
                        Acc a = acc[p];
                        if (a.skipped) {
                            continue;
                        }
                        rows.add(new Row(
                                task,
                                length,
                                depth,
                                policies.get(p).name(),
                                samples,
                                promptTokens,
                                a.accuracy / samples,
                                a.compared == 0 ? Double.NaN : a.agree / a.compared,
                                a.compared == 0 ? Double.NaN : a.kl / a.compared,
                                a.peak,
                                a.store / samples,
                                a.prefillNanos / 1e6 / a.prefillTokens,
                                a.decodeNanos / 1e6 / Math.max(1, a.decodeTokens)));
                    }
                }
            }
        }
        return rows;
    }

    private static final class Acc {
        boolean skipped;
        double accuracy;
        double agree;
        double kl;
        int compared;
        long peak;
        long store;
        long prefillNanos;
        long prefillTokens;
        long decodeNanos;
        long decodeTokens;
    }

    private void measure(
            MemoryPolicy policy, int[] prompt, int[] gold, LongInputTasks.Sample sample, float[][] reference, Acc acc) {
        KvCache cache = model.newCache();
        long[] peak = {0};
        float[][] last = new float[1][];
        int chunk = model.settings().prefillChunk();
        long t0 = System.nanoTime();
        for (int from = 0; from < prompt.length; from += chunk) {
            int[] part = Arrays.copyOfRange(prompt, from, Math.min(prompt.length, from + chunk));
            model.forward(cache, part, null, policy, Transformer.Logits.LAST, (q, l) -> last[0] = l.clone());
            peak[0] = Math.max(peak[0], cache.residentBytes());
        }
        policy.committed(cache); // the input is the session's memory; the answer steps below are taken back
        acc.prefillNanos += System.nanoTime() - t0;
        acc.prefillTokens += prompt.length;
        long mark = cache.nextSeq();
        float[] afterPrompt = last[0];
        if (reference != null) {
            float[][] mine = teacherForced(policy, null, gold, new Object[] {cache, afterPrompt});
            for (int i = 0; i < gold.length; i++) {
                acc.agree += Sampler.argmax(mine[i], vocab) == Sampler.argmax(reference[i], vocab) ? 1 : 0;
                acc.kl += kl(reference[i], mine[i]);
                acc.compared++;
            }
            peak[0] = Math.max(peak[0], cache.residentBytes());
            cache.truncate(mark);
        }
        // greedy answer
        StreamingDecoder dec = new StreamingDecoder(tokenizer, true);
        StringBuilder out = new StringBuilder();
        float[] logits = afterPrompt;
        long t1 = System.nanoTime();
        int steps = 0;
        boolean answering = true;
        for (; steps < Math.max(maxNewTokens, decodeTokens); steps++) {
            int next = Sampler.argmax(logits, vocab);
            if (answering && (steps == maxNewTokens || model.config().isEos(next))) {
                answering = false;
            }
            if (answering) {
                out.append(dec.accept(next));
                answering = LongInputTasks.score(out.toString(), sample.answers()) < 1.0;
            } else if (steps >= decodeTokens) {
                break;
            }
            model.forward(
                    cache, new int[] {next}, null, policy, Transformer.Logits.LAST, (q, l) -> last[0] = l.clone());
            logits = last[0];
            peak[0] = Math.max(peak[0], cache.residentBytes());
        }
        acc.decodeNanos += System.nanoTime() - t1;
        acc.decodeTokens += steps;
        acc.accuracy += LongInputTasks.score(out.toString(), sample.answers());
        acc.peak = Math.max(acc.peak, peak[0]);
        acc.store += cache.unitStore().bytes();
    }

    /**
     * Next-token logits at each gold answer position, teacher-forced: row i predicts {@code gold[i]}. Either prefills
     * {@code prompt} into a new cache, or continues {@code cacheAndLogits = {cache, logits after the prompt}}.
     */
    private float[][] teacherForced(MemoryPolicy policy, int[] prompt, int[] gold, Object[] cacheAndLogits) {
        float[][] out = new float[gold.length][];
        float[][] last = new float[1][];
        KvCache cache;
        if (cacheAndLogits == null) {
            cache = model.newCache();
            model.forward(cache, prompt, null, policy, Transformer.Logits.LAST, (q, l) -> last[0] = l.clone());
        } else {
            cache = (KvCache) cacheAndLogits[0];
            last[0] = (float[]) cacheAndLogits[1];
        }
        for (int i = 0; i < gold.length; i++) {
            out[i] = Arrays.copyOf(last[0], vocab);
            if (i + 1 < gold.length) {
                model.forward(
                        cache,
                        new int[] {gold[i]},
                        null,
                        policy,
                        Transformer.Logits.LAST,
                        (q, l) -> last[0] = l.clone());
            }
        }
        return out;
    }

    /** KL(p || q) of the softmax distributions of two logit rows, in nats. */
    static double kl(float[] p, float[] q) {
        int n = Math.min(p.length, q.length);
        double[] lp = io.engram.engine.tensor.Softmax.logSoftmax(p, n);
        double[] lq = io.engram.engine.tensor.Softmax.logSoftmax(q, n);
        double kl = 0;
        for (int i = 0; i < n; i++) {
            kl += Math.exp(lp[i]) * (lp[i] - lq[i]);
        }
        return Math.max(0, kl);
    }
}
