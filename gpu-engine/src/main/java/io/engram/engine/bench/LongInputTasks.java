package io.engram.engine.bench;

import io.engram.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.UUID;

/**
 * Synthetic long-input tasks generated locally (algorithms.md section 8): passkey retrieval, multi-key needle in a
 * haystack (RULER MK-NIAH), key-value retrieval over uuids (InfiniteBench kv_retrieval) and variable tracking (RULER
 * VT). Each is sized to a target token count with the model's tokenizer and puts its evidence at a chosen depth.
 */
public final class LongInputTasks {
    /** Filler: the passkey task's noise unit. */
    public static final String NOISE =
            "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";

    private static final String[] ADJECTIVES = {
        "amber", "brisk", "calm", "dusty", "eager", "fuzzy", "gentle", "hollow", "icy", "jolly", "keen", "lucky",
        "misty", "noble", "odd", "proud", "quiet", "rusty", "silent", "tidy"
    };
    private static final String[] NOUNS = {
        "anchor", "badger", "candle", "dragon", "engine", "falcon", "garden", "harbor", "island", "jacket", "kettle",
        "lantern", "meadow", "needle", "orchid", "pepper", "quarry", "river", "saddle", "tower"
    };

    /** The tasks. */
    public enum Kind {
        PASSKEY,
        MULTIKEY_NIAH,
        KV_RETRIEVAL,
        VARIABLE_TRACKING
    }

    /**
     * One generated input.
     *
     * @param prompt the whole input, question and answer prefix included
     * @param answers strings the output must contain (all of them, scored as the share found)
     */
    public record Sample(Kind kind, String prompt, List<String> answers, int targetTokens, double depth) {}

    private final Tokenizer tokenizer;
    private final int noiseTokens;

    public LongInputTasks(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
        this.noiseTokens = Math.max(1, tokenizer.encode(NOISE, false).length);
    }

    private int tokens(String s) {
        return tokenizer.encode(s, false).length;
    }

    /** A sample of about {@code targetTokens} tokens with its evidence at {@code depth} (0 = start, 1 = end). */
    public Sample generate(Kind kind, int targetTokens, double depth, Random rnd) {
        return switch (kind) {
            case PASSKEY -> passkey(targetTokens, depth, rnd);
            case MULTIKEY_NIAH -> multiKey(targetTokens, depth, rnd);
            case KV_RETRIEVAL -> kvRetrieval(targetTokens, depth, rnd);
            case VARIABLE_TRACKING -> variables(targetTokens, depth, rnd);
        };
    }

    private Sample passkey(int target, double depth, Random rnd) {
        String key = Integer.toString(10000 + rnd.nextInt(90000));
        String header = "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
                + "I will quiz you about the important information there.\n\n";
        String needle = "The pass key is " + key + ". Remember it. " + key + " is the pass key. ";
        String question = "\n\nWhat is the pass key? The pass key is";
        return new Sample(
                Kind.PASSKEY,
                haystack(header, List.of(needle), question, target, new double[] {depth}),
                List.of(key),
                target,
                depth);
    }

    private Sample multiKey(int target, double depth, Random rnd) {
        List<String> keys = new ArrayList<>();
        while (keys.size() < 4) {
            String k = ADJECTIVES[rnd.nextInt(ADJECTIVES.length)] + "-" + NOUNS[rnd.nextInt(NOUNS.length)];
            if (!keys.contains(k)) {
                keys.add(k);
            }
        }
        List<String> needles = new ArrayList<>();
        List<String> values = new ArrayList<>();
        for (String k : keys) {
            String v = Integer.toString(1_000_000 + rnd.nextInt(9_000_000));
            values.add(v);
            needles.add("One of the special magic numbers for " + k + " is: " + v + ". ");
        }
        // the queried needle at the requested depth, the distractors spread over the haystack
        double[] depths = {depth, (depth + 0.25) % 1.0, (depth + 0.5) % 1.0, (depth + 0.75) % 1.0};
        String header = "Some special magic numbers are hidden within the following text. Make sure to memorize it. "
                + "I will quiz you about the numbers afterwards.\n";
        String question = "\nWhat is the special magic number for " + keys.get(0) + " mentioned in the provided text? "
                + "The special magic number for " + keys.get(0) + " mentioned in the provided text is";
        return new Sample(
                Kind.MULTIKEY_NIAH,
                haystack(header, needles, question, target, depths),
                List.of(values.get(0)),
                target,
                depth);
    }

    private static String uuid(Random rnd) {
        return new UUID(rnd.nextLong(), rnd.nextLong()).toString();
    }

    private Sample kvRetrieval(int target, double depth, Random rnd) {
        String header = "Extract the value corresponding to the specified key in the JSON object below.\n\n";
        String probe = "\"" + uuid(rnd) + "\": \"" + uuid(rnd) + "\", ";
        int perPair = Math.max(1, tokens(probe));
        int fixed = tokens(header) + 60;
        int pairs = Math.max(2, (target - fixed) / perPair);
        int at = Math.min(pairs - 1, (int) Math.round(depth * (pairs - 1)));
        StringBuilder json = new StringBuilder("{");
        String key = null;
        String value = null;
        for (int i = 0; i < pairs; i++) {
            String k = uuid(rnd);
            String v = uuid(rnd);
            if (i == at) {
                key = k;
                value = v;
            }
            json.append(i == 0 ? "" : ", ")
                    .append('"')
                    .append(k)
                    .append("\": \"")
                    .append(v)
                    .append('"');
        }
        json.append('}');
        String prompt = header + json + "\n\nKey: \"" + key + "\"\nThe value associated with the specified key is: ";
        return new Sample(Kind.KV_RETRIEVAL, prompt, List.of(value), target, depth);
    }

    private Sample variables(int target, double depth, Random rnd) {
        int hops = 4;
        List<String> names = new ArrayList<>();
        while (names.size() < hops + 1) {
            StringBuilder n = new StringBuilder();
            for (int i = 0; i < 5; i++) {
                n.append((char) ('A' + rnd.nextInt(26)));
            }
            if (!names.contains(n.toString())) {
                names.add(n.toString());
            }
        }
        String value = Integer.toString(10000 + rnd.nextInt(90000));
        List<String> lines = new ArrayList<>();
        lines.add("VAR " + names.get(0) + " = " + value + ". ");
        for (int i = 1; i <= hops; i++) {
            lines.add("VAR " + names.get(i) + " = VAR " + names.get(i - 1) + ". ");
        }
        // the chain starts at the requested depth and spreads, in order, over the rest of the text
        double[] depths = new double[lines.size()];
        for (int i = 0; i < depths.length; i++) {
            depths[i] = depth + (1 - depth) * i / (double) depths.length;
        }
        String header = "Memorize and track the chain of variable assignment hidden in the following text.\n\n";
        String question = "\n\nFind all variables that are assigned the value " + value + " in the text above. Answer: "
                + "According to the chain of variable assignment in the text above, " + (hops + 1)
                + " variables are assigned the value " + value + ", they are:";
        return new Sample(
                Kind.VARIABLE_TRACKING,
                haystack(header, lines, question, target, depths),
                List.copyOf(names),
                target,
                depth);
    }

    /** Noise units around needles placed at the given depths (in order of depth), sized to {@code target} tokens. */
    private String haystack(String header, List<String> needles, String question, int target, double[] depths) {
        int fixed = tokens(header) + tokens(question);
        for (String n : needles) {
            fixed += tokens(n);
        }
        int units = Math.max(needles.size(), (target - fixed) / noiseTokens);
        Integer[] order = new Integer[needles.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Double.compare(depths[a], depths[b]));
        StringBuilder sb = new StringBuilder(header);
        int placed = 0;
        for (int u = 0; u <= units; u++) {
            while (placed < order.length && Math.round(depths[order[placed]] * units) <= u) {
                sb.append(needles.get(order[placed++]));
            }
            if (u < units) {
                sb.append(NOISE);
            }
        }
        return sb.append(question).toString();
    }

    /** Share of {@code answers} found in {@code output} (case-insensitive). */
    public static double score(String output, List<String> answers) {
        String o = output.toLowerCase(java.util.Locale.ROOT);
        int found = 0;
        for (String a : answers) {
            found += o.contains(a.toLowerCase(java.util.Locale.ROOT)) ? 1 : 0;
        }
        return found / (double) answers.size();
    }
}
