package io.engram.engine.attribution;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;

/**
 * TracLLM's informed search (algorithms.md section 7.3) with its ensemble of score functions (7.2, 7.4): the candidate
 * texts start as one group; every level splits each group of more than one text into halves, and when there are more
 * than {@code topK} groups scores them and keeps the {@code topK} best; it ends when every group is one text and returns
 * those texts with their last scores, best first. Each level scores at most {@code 2 topK} groups, so the cost is
 * {@code O(topK log(n / topK))} levels' worth of value calls instead of scoring every text.
 *
 * <p>As TracLLM does, the search runs once per score function and each text's final score is the maximum of its scores
 * over the searches that returned it. A group's score is taken among the groups of its level (the context is their
 * union: dropped groups are gone): single-text contribution {@code v(g) - v(empty)}; leave-one-out {@code v(U) - v(U \ g)}
 * times {@code looWeight}; denoised Shapley: over {@code permutations} seeded random orders, the gain {@code v(S + g) -
 * v(S)} when {@code g} joins the groups before it, averaged over the top {@code denoiseFraction} of the gains (at least
 * one). Leave-one-out finds texts the answer needs; single-text contribution and Shapley find texts that support it
 * redundantly (two copies of a fact, where removing either alone changes nothing). The searches share their value calls
 * (the first levels are the same subsets).
 *
 * <p>Deterministic for a seed: the same value function gives the same result, which lets {@link Memo} resume an
 * interrupted search by running it again over the values already computed.
 */
public final class TracSearch {

    /** TracLLM's score functions (algorithms.md section 7.2). */
    public enum ScoreFunction {
        /** Single-text contribution: {@code v(g) - v(empty)}. */
        STC,
        /** Leave-one-out: {@code v(U) - v(U \ g)}, times the LOO weight. */
        LOO,
        /** Denoised Shapley: the mean of the top share of a group's marginal gains over random orders. */
        SHAPLEY
    }

    /**
     * @param topK texts returned (TracLLM: 5)
     * @param permutations Shapley permutations per level (TracLLM's scripts: 20, README: 5 for speed)
     * @param denoiseFraction share of the largest Shapley gains averaged (TracLLM: 0.2)
     * @param looWeight factor on leave-one-out scores in the ensemble (TracLLM: 2)
     * @param seed seed of the permutations
     * @param functions the score functions, one search each (TracLLM: all three)
     */
    public record Settings(
            int topK,
            int permutations,
            double denoiseFraction,
            double looWeight,
            long seed,
            java.util.Set<ScoreFunction> functions) {
        public Settings {
            if (topK < 1 || permutations < 0 || !(denoiseFraction > 0 && denoiseFraction <= 1) || !(looWeight > 0)) {
                throw new IllegalArgumentException(
                        "top-k >= 1, permutations >= 0, denoise fraction in (0, 1] and LOO weight > 0 "
                                + "are required: " + this);
            }
            if (functions.isEmpty() || (functions.contains(ScoreFunction.SHAPLEY) && permutations == 0)) {
                throw new IllegalArgumentException(
                        "at least one score function, and permutations >= 1 for Shapley: " + functions);
            }
            functions = java.util.Collections.unmodifiableSet(java.util.EnumSet.copyOf(functions));
        }

        /** TracLLM's ensemble of all three functions; with 0 permutations, single-text contribution and leave-one-out. */
        public Settings(int topK, int permutations, double denoiseFraction, double looWeight, long seed) {
            this(
                    topK,
                    permutations,
                    denoiseFraction,
                    looWeight,
                    seed,
                    permutations == 0
                            ? java.util.EnumSet.of(ScoreFunction.STC, ScoreFunction.LOO)
                            : java.util.EnumSet.allOf(ScoreFunction.class));
        }

        /** TracLLM's defaults (K 5, 5 permutations, beta 0.2, w 2, all three functions) with {@code seed}. */
        public static Settings defaults(long seed) {
            return new Settings(5, 5, 0.2, 2.0, seed);
        }

        public Settings withFunctions(ScoreFunction... f) {
            return new Settings(
                    topK, permutations, denoiseFraction, looWeight, seed, java.util.EnumSet.copyOf(List.of(f)));
        }
    }

    /** The value of a subset of the candidates (TracLLM's {@code v}); may throw {@link Memo.OutOfBudget}. */
    @FunctionalInterface
    public interface Valuation {
        double value(BitSet kept);
    }

    /** A candidate text and its score (log-probability units; higher supports the answer more). */
    public record Scored(int candidate, double score) {}

    private final Settings settings;

    public TracSearch(Settings settings) {
        this.settings = settings;
    }

    /** The best {@code topK} of {@code n} candidates, best first: one search per score function, maximum per text. */
    public List<Scored> run(int n, Valuation v) {
        if (n == 0) {
            return List.of();
        }
        java.util.Map<Integer, Double> best = new java.util.HashMap<>();
        for (ScoreFunction f : settings.functions()) {
            for (Scored s : search(n, v, f)) {
                best.merge(s.candidate(), s.score(), Math::max);
            }
        }
        List<Scored> out = new ArrayList<>();
        best.forEach((c, score) -> out.add(new Scored(c, score)));
        out.sort(Comparator.comparingDouble((Scored s) -> -s.score()).thenComparingInt(Scored::candidate));
        return List.copyOf(out.subList(0, Math.min(out.size(), settings.topK())));
    }

    /** The informed search with one score function. */
    List<Scored> search(int n, Valuation v, ScoreFunction f) {
        List<int[]> nodes = new ArrayList<>();
        nodes.add(range(0, n));
        double[] scores = null;
        for (int level = 0; ; level++) {
            boolean singletons = nodes.stream().allMatch(g -> g.length == 1);
            if (singletons) {
                if (scores == null) {
                    scores = score(nodes, v, level, f);
                }
                return ranked(nodes, scores);
            }
            List<int[]> split = new ArrayList<>();
            for (int[] g : nodes) {
                if (g.length == 1) {
                    split.add(g);
                } else {
                    split.add(Arrays.copyOfRange(g, 0, g.length / 2));
                    split.add(Arrays.copyOfRange(g, g.length / 2, g.length));
                }
            }
            nodes = split;
            scores = null;
            if (nodes.size() > settings.topK()) {
                double[] s = score(nodes, v, level, f);
                Integer[] order = byScore(s);
                boolean[] keep = new boolean[nodes.size()];
                for (int i = 0; i < settings.topK(); i++) {
                    keep[order[i]] = true;
                }
                List<int[]> kept = new ArrayList<>();
                double[] keptScores = new double[settings.topK()];
                for (int i = 0; i < nodes.size(); i++) {
                    if (keep[i]) {
                        keptScores[kept.size()] = s[i];
                        kept.add(nodes.get(i)); // original order: contexts keep the texts' order
                    }
                }
                nodes = kept;
                scores = keptScores;
            }
        }
    }

    /** Score of every group of a level by {@code f}, among those groups. */
    double[] score(List<int[]> nodes, Valuation v, int level, ScoreFunction f) {
        int m = nodes.size();
        double[] out = new double[m];
        switch (f) {
            case STC -> {
                double none = v.value(new BitSet());
                for (int i = 0; i < m; i++) {
                    BitSet only = new BitSet();
                    set(only, nodes.get(i), true);
                    out[i] = v.value(only) - none;
                }
            }
            case LOO -> {
                BitSet union = new BitSet();
                for (int[] g : nodes) {
                    set(union, g, true);
                }
                double all = v.value(union);
                for (int i = 0; i < m; i++) {
                    BitSet without = (BitSet) union.clone();
                    set(without, nodes.get(i), false);
                    out[i] = settings.looWeight() * (all - v.value(without));
                }
            }
            case SHAPLEY -> shapley(nodes, v, level, out);
        }
        return out;
    }

    /** Denoised Shapley: per group, the mean of the top share of its gains over seeded random orders. */
    private void shapley(List<int[]> nodes, Valuation v, int level, double[] out) {
        int m = nodes.size();
        double[][] gains = new double[m][settings.permutations()];
        SplittableRandom rnd = new SplittableRandom(settings.seed() * 0x9E3779B97F4A7C15L + level);
        for (int p = 0; p < settings.permutations(); p++) {
            int[] order = range(0, m);
            for (int i = m - 1; i > 0; i--) {
                int j = rnd.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            BitSet s = new BitSet();
            double prev = v.value(s);
            for (int i : order) {
                set(s, nodes.get(i), true);
                double cur = v.value(s);
                gains[i][p] = cur - prev;
                prev = cur;
            }
        }
        int top = Math.max(1, (int) Math.ceil(settings.denoiseFraction() * settings.permutations()));
        for (int i = 0; i < m; i++) {
            double[] g = gains[i].clone();
            Arrays.sort(g);
            double sum = 0;
            for (int k = 0; k < top; k++) {
                sum += g[g.length - 1 - k];
            }
            out[i] = sum / top;
        }
    }

    private List<Scored> ranked(List<int[]> nodes, double[] scores) {
        List<Scored> out = new ArrayList<>();
        for (int i : byScore(scores)) {
            out.add(new Scored(nodes.get(i)[0], scores[i]));
        }
        return out.subList(0, Math.min(out.size(), settings.topK()));
    }

    /** Indices by score, best first; ties go to the earlier index. */
    private static Integer[] byScore(double[] s) {
        Integer[] order = new Integer[s.length];
        for (int i = 0; i < s.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, Comparator.<Integer>comparingDouble(i -> -s[i]).thenComparingInt(i -> i));
        return order;
    }

    private static int[] range(int from, int to) {
        int[] r = new int[to - from];
        for (int i = 0; i < r.length; i++) {
            r[i] = from + i;
        }
        return r;
    }

    private static void set(BitSet s, int[] group, boolean on) {
        for (int i : group) {
            s.set(i, on);
        }
    }
}
