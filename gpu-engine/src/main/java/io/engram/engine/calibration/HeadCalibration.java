package io.engram.engine.calibration;

import io.engram.engine.kv.AttentionObserver;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Transformer;
import io.engram.engine.tokenizer.Tokenizer;
import java.util.Arrays;
import java.util.Random;
import java.util.function.IntConsumer;

/**
 * Finds retrieval heads with the retrieval-score method (algorithms.md section 5): needle tasks generated locally
 * (a passkey, or a story character's name, at a chosen depth of generated filler, then the question), answered greedily with full
 * attention. At every generated token, a KV head scores {@code 1/|needle|} when the key it attends to most (attention
 * mass summed over its query heads) lies in the needle's answer tokens and holds the token just generated: a copy
 * from the context. A head's score is its mean over the counted samples (by default those answered correctly, as in
 * the method; {@code countFailed} counts every sample, for models too small to answer).
 */
public final class HeadCalibration {
    /** The filler unit of the passkey task (algorithms.md section 8). */
    public static final String NOISE =
            "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";

    private final Transformer model;
    private final Tokenizer tokenizer;

    public HeadCalibration(Transformer model, Tokenizer tokenizer) {
        this.model = model;
        this.tokenizer = tokenizer;
    }

    /** Scores per (layer, KV head), and how many samples ran and counted. */
    public record Result(float[][] scores, int samples, int counted) {}

    /** One needle task: the prompt, and the token span of the answer inside it. */
    public record Task(int[] prompt, int answerFrom, int answerTo, String answer) {}

    /** The needle tasks calibration can generate. */
    public enum TaskKind {
        /** A 5-digit pass key in noise sentences, asked for at the end (instruction-following models). */
        PASSKEY,
        /** A character's name in a simple story, asked for at the end (small story models, e.g. stories260K). */
        STORY
    }

    private static final String[] STORY_FILLER = {
        "The sun was shining. ",
        "The bird sang a song. ",
        "It was a warm day. ",
        "The dog ran in the park. ",
        "The flowers were red and yellow. ",
        "The cat sat on the mat. ",
        "The sky was blue. ",
        "The tree was very big. ",
        "The wind was soft. ",
        "The ball was on the grass. "
    };
    private static final String[] NAMES = {"Tom", "Lily", "Ben", "Mia", "Sam", "Anna", "Max", "Sue", "Tim", "Lucy"};

    /** A passkey task of about {@code contextTokens} tokens with the needle at {@code depth} (0..1). */
    public Task passkey(int contextTokens, double depth, Random rnd) {
        return task(TaskKind.PASSKEY, contextTokens, depth, rnd);
    }

    /** A task of the given kind, about {@code contextTokens} tokens, with the needle at {@code depth} (0..1). */
    public Task task(TaskKind kind, int contextTokens, double depth, Random rnd) {
        String header;
        String needle;
        String question;
        String key;
        java.util.function.IntFunction<String> filler;
        if (kind == TaskKind.PASSKEY) {
            key = Integer.toString(10000 + rnd.nextInt(90000));
            needle = "The pass key is " + key + ". Remember it. " + key + " is the pass key. ";
            header = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. ";
            question = "What is the pass key? The pass key is";
            filler = i -> NOISE;
        } else {
            key = NAMES[rnd.nextInt(NAMES.length)];
            boolean girl = rnd.nextBoolean();
            needle = "Once upon a time, there was a little " + (girl ? "girl" : "boy") + " named " + key + ". ";
            header = "";
            question = "The little " + (girl ? "girl" : "boy") + "'s name was";
            long fillerSeed = rnd.nextLong();
            filler = i -> STORY_FILLER[(int) Math.floorMod(fillerSeed + 31L * i, (long) STORY_FILLER.length)];
        }
        int unitTokens = Math.max(1, tokenizer.encode(filler.apply(0), false).length);
        int fixed = tokenizer.encode(header + needle + question, true).length;
        int units = Math.max(1, (contextTokens - fixed) / unitTokens);
        int before = (int) Math.round(depth * units);
        StringBuilder sb = new StringBuilder(header);
        for (int i = 0; i < before; i++) {
            sb.append(filler.apply(i));
        }
        int keyStart = sb.length() + needle.indexOf(key);
        sb.append(needle);
        for (int i = before; i < units; i++) {
            sb.append(filler.apply(i));
        }
        String text = sb.append(question).toString();
        int[] ids = tokenizer.encode(text, true);
        // the answer's tokens: those whose text overlaps the first occurrence of the key in the needle
        int keyEnd = keyStart + key.length();
        int from = -1;
        int to = -1;
        int chars = 0;
        StringBuilder decoded = new StringBuilder();
        io.engram.engine.tokenizer.StreamingDecoder dec =
                new io.engram.engine.tokenizer.StreamingDecoder(tokenizer, true);
        for (int i = 0; i < ids.length; i++) {
            decoded.append(dec.accept(ids[i]));
            int end = decoded.length();
            if (end > keyStart && chars < keyEnd) {
                from = from < 0 ? i : from;
                to = i + 1;
            }
            chars = end;
        }
        if (from < 0) {
            throw new IllegalStateException("the needle's key is not found in the encoded prompt");
        }
        return new Task(ids, from, to, key);
    }

    /**
     * Runs {@code samples} passkey tasks at the given context lengths and depths (cycled), generating up to
     * {@code maxNewTokens} tokens each.
     */
    public Result run(
            int[] contextLengths,
            double[] depths,
            int samples,
            int maxNewTokens,
            boolean countFailed,
            long seed,
            IntConsumer progress) {
        return run(TaskKind.PASSKEY, contextLengths, depths, samples, maxNewTokens, countFailed, seed, progress);
    }

    /** As {@link #run(int[], double[], int, int, boolean, long, IntConsumer)} with tasks of {@code kind}. */
    public Result run(
            TaskKind kind,
            int[] contextLengths,
            double[] depths,
            int samples,
            int maxNewTokens,
            boolean countFailed,
            long seed,
            IntConsumer progress) {
        int layers = model.config().layers();
        int kvHeads = model.config().kvHeads();
        double[][] sum = new double[layers][kvHeads];
        Random rnd = new Random(seed);
        int counted = 0;
        for (int s = 0; s < samples; s++) {
            Task task = task(
                    kind,
                    contextLengths[s % contextLengths.length],
                    depths[(s / contextLengths.length) % depths.length],
                    rnd);
            double[][] copy = new double[layers][kvHeads];
            String answer = answer(task, maxNewTokens, copy);
            if (countFailed || answer.contains(task.answer())) {
                counted++;
                for (int l = 0; l < layers; l++) {
                    for (int g = 0; g < kvHeads; g++) {
                        sum[l][g] += copy[l][g];
                    }
                }
            }
            progress.accept(s + 1);
        }
        float[][] scores = new float[layers][kvHeads];
        for (int l = 0; l < layers; l++) {
            for (int g = 0; g < kvHeads; g++) {
                scores[l][g] = counted == 0 ? 0f : (float) (sum[l][g] / counted);
            }
        }
        return new Result(scores, samples, counted);
    }

    /** Greedy answer to one task, adding each head's copy events to {@code copy}. */
    String answer(Task task, int maxNewTokens, double[][] copy) {
        int layers = model.config().layers();
        int kvHeads = model.config().kvHeads();
        int vocab = Math.min(model.config().vocabSize(), tokenizer.vocabSize());
        KvCache cache = model.newCache();
        float[][] best = new float[layers][kvHeads];
        long[][] bestSeq = new long[layers][kvHeads];
        AttentionObserver argmax = (layer, kvHead, span, mass, offset) -> {
            for (int j = 0; j < span.length(); j++) {
                if (mass[offset + j] > best[layer][kvHead]) {
                    best[layer][kvHead] = mass[offset + j];
                    bestSeq[layer][kvHead] = span.block().seq(span.from() + j);
                }
            }
        };
        MemoryPolicy observed = new FullAttention().observedBy(argmax);
        int[] next = new int[1];
        float[][] last = new float[1][];
        model.forward(
                cache,
                task.prompt(),
                null,
                new FullAttention(),
                Transformer.Logits.LAST,
                (q, l) -> last[0] = l.clone());
        StringBuilder out = new StringBuilder();
        io.engram.engine.tokenizer.StreamingDecoder dec =
                new io.engram.engine.tokenizer.StreamingDecoder(tokenizer, true);
        int[] needle = Arrays.copyOfRange(task.prompt(), task.answerFrom(), task.answerTo());
        for (int step = 0; step < maxNewTokens; step++) {
            next[0] = io.engram.engine.generate.Sampler.argmax(last[0], vocab);
            if (model.config().isEos(next[0]) || out.toString().contains("\n")) {
                break;
            }
            out.append(dec.accept(next[0]));
            for (float[] row : best) {
                Arrays.fill(row, Float.NEGATIVE_INFINITY);
            }
            // the step that consumes the generated token shows which key each head attends to while producing the next;
            // the copy event is credited for the token generated before it, whose attention is observed here
            model.forward(cache, next, null, observed, Transformer.Logits.LAST, (q, l) -> last[0] = l.clone());
            int produced = io.engram.engine.generate.Sampler.argmax(last[0], vocab);
            for (int l = 0; l < layers; l++) {
                for (int g = 0; g < kvHeads; g++) {
                    long seq = bestSeq[l][g];
                    if (seq >= task.answerFrom() && seq < task.answerTo() && task.prompt()[(int) seq] == produced) {
                        copy[l][g] += 1.0 / needle.length;
                    }
                }
            }
        }
        return out.toString();
    }
}
