package io.engram.engine.generate;

import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Transformer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Autoregressive generation over KV caches: prefills each prompt (chunked), then decodes one token per step until
 * EOS, a stop token, a stop string or the token limit. Several generations (of different sessions) run together:
 * their prefill chunks and then their decode steps share forward passes ({@link Transformer#forwardBatch}), so weights
 * are read once per step for all of them; each result equals that of running it alone. The prompt and every generated
 * token but the last are appended to the request's cache like any other input (the caller decides whether it is kept).
 *
 * <p>Not thread-safe.
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
            throw new IllegalArgumentException("vocab limit %d outside [1, %d]"
                    .formatted(vocabLimit, model.config().vocabSize()));
        }
        this.model = model;
        this.vocabLimit = vocabLimit;
    }

    /** One generation to run: its cache, prompt (with provenance tags or null), policy, options and listeners. */
    public record Request(
            KvCache cache,
            int[] prompt,
            long[] promptSources,
            MemoryPolicy policy,
            SamplingOptions options,
            Detokenizer detokenizer,
            TokenListener listener) {
        public Request {
            if (prompt.length == 0) {
                throw new IllegalArgumentException("generation needs at least one prompt token to produce logits");
            }
        }
    }

    public Generation generate(
            KvCache cache,
            int[] prompt,
            long[] promptSources,
            MemoryPolicy policy,
            SamplingOptions options,
            Detokenizer detokenizer,
            TokenListener listener) {
        return generateBatch(List.of(new Request(cache, prompt, promptSources, policy, options, detokenizer, listener)))
                .get(0);
    }

    /** Runs the requests together; results in request order. Requests must use distinct caches. */
    public List<Generation> generateBatch(List<Request> requests) {
        List<Run> runs = new ArrayList<>(requests.size());
        for (Request r : requests) {
            runs.add(new Run(r));
        }
        // prefill: chunk i of every prompt that has one, in one forward
        int chunk = model.settings().prefillChunk();
        for (int from = 0; ; from += chunk) {
            List<Transformer.Sequence> step = new ArrayList<>();
            for (Run run : runs) {
                int len = run.req.prompt().length;
                if (from < len) {
                    int to = Math.min(len, from + chunk);
                    long[] src = run.req.promptSources() == null
                            ? null
                            : Arrays.copyOfRange(run.req.promptSources(), from, to);
                    step.add(new Transformer.Sequence(
                            run.req.cache(),
                            Arrays.copyOfRange(run.req.prompt(), from, to),
                            src,
                            run.req.policy(),
                            to == len ? Transformer.Logits.LAST : Transformer.Logits.NONE,
                            run::logits));
                }
            }
            if (step.isEmpty()) {
                break;
            }
            model.forwardBatch(step);
        }
        long prefilled = System.nanoTime();
        for (Run run : runs) {
            run.prefillNanos = prefilled - run.start;
            run.choose();
        }
        // decode: one token for every run still going, in one forward per step
        while (true) {
            List<Transformer.Sequence> step = new ArrayList<>();
            for (Run run : runs) {
                if (!run.done) {
                    step.add(new Transformer.Sequence(
                            run.req.cache(),
                            new int[] {run.pending},
                            null,
                            run.req.policy(),
                            Transformer.Logits.LAST,
                            run::logits));
                }
            }
            if (step.isEmpty()) {
                break;
            }
            model.forwardBatch(step);
            for (Run run : runs) {
                if (!run.done) {
                    run.choose();
                }
            }
        }
        List<Generation> out = new ArrayList<>(runs.size());
        for (Run run : runs) {
            out.add(run.result());
        }
        return out;
    }

    /** The state of one generation between forward steps. */
    private final class Run {
        final Request req;
        final Sampler sampler;
        final long start = System.nanoTime();
        float[] last;
        int[] tokens = new int[16];
        double[] lps = new double[16];
        double[] ents = new double[16];
        int n;
        int pending; // the chosen token waiting to be fed back
        boolean done;
        Generation.StopReason reason = Generation.StopReason.MAX_TOKENS;
        final StringBuilder text = new StringBuilder();
        int emitted; // chars of text already passed to the listener
        long prefillNanos;
        long endNanos;

        Run(Request req) {
            this.req = req;
            this.sampler = new Sampler(req.options());
        }

        void logits(long seq, float[] l) {
            last = l.clone();
        }

        /** Samples from the latest logits; marks the run done or leaves the token pending for the next step. */
        void choose() {
            SamplingOptions o = req.options();
            if (n >= o.maxNewTokens()) {
                finish();
                return;
            }
            if (vocabLimit < last.length) {
                Arrays.fill(last, vocabLimit, last.length, Float.NEGATIVE_INFINITY);
            }
            Sampler.Choice c = sampler.next(last);
            if (o.stopAtEos() && model.config().isEos(c.token())) {
                reason = Generation.StopReason.EOS;
                finish();
                return;
            }
            if (o.stopTokens().contains(c.token())) {
                reason = Generation.StopReason.STOP_TOKEN;
                finish();
                return;
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
            int before = text.length();
            text.append(req.detokenizer().next(c.token()));
            int cut = stopIndex(text, o, before);
            if (cut >= 0) {
                text.setLength(cut);
                req.listener().onToken(c.token(), text.substring(Math.min(emitted, cut)), c.logProb());
                emitted = cut;
                reason = Generation.StopReason.STOP_STRING;
                finish();
                return;
            }
            // hold back a tail that may still grow into a stop string, so listeners never see text that is cut later
            int safe = text.length() - partialStopSuffix(text, o);
            req.listener().onToken(c.token(), safe > emitted ? text.substring(emitted, safe) : "", c.logProb());
            emitted = Math.max(emitted, safe);
            if (n == o.maxNewTokens()) {
                finish();
                return;
            }
            pending = c.token();
        }

        void finish() {
            done = true;
            endNanos = System.nanoTime();
            if (reason != Generation.StopReason.STOP_STRING && emitted < text.length() && n > 0) {
                req.listener().onToken(-1, text.substring(emitted), 0); // flush held-back text; -1: no new token
                emitted = text.length();
            }
        }

        Generation result() {
            return new Generation(
                    Arrays.copyOf(tokens, n),
                    Arrays.copyOf(lps, n),
                    Arrays.copyOf(ents, n),
                    text.toString(),
                    reason,
                    req.prompt().length,
                    prefillNanos,
                    endNanos - start - prefillNanos);
        }
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
