package io.engram.engine.memory.retrieval;

import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * EM-LLM's event segmentation (algorithms.md section 3): boundaries where a token's surprise spikes above the recent
 * mean by {@code gamma} standard deviations, then each moved to the split of its neighbourhood that is best by graph
 * modularity or conductance over key similarity. {@link RetrievalMemory} packs the events these boundaries cut.
 */
final class EventBoundaries {

    private final RetrievalSettings cfg;
    private final int layers;
    private final int kvHeads;
    private final int headDim;

    EventBoundaries(RetrievalSettings cfg, int layers, int kvHeads, int headDim) {
        this.cfg = cfg;
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
    }

    /** Token t starts an event when its surprise exceeds mean + gamma * std of the window before its step. */
    void mark(TreeSet<Long> boundaries, KvCache cache, long firstSeq, long end, double gamma) {
        long from = Math.max(cfg.initTokens(), firstSeq - cfg.localTokens());
        double[] stats = stats(cache, from, firstSeq);
        if (stats[0] < 2) {
            stats = stats(cache, Math.max(cfg.initTokens(), firstSeq), end);
        }
        if (stats[0] < 2) {
            return;
        }
        double mean = stats[1] / stats[0];
        double var = Math.max(0, stats[2] / stats[0] - mean * mean);
        double threshold = mean + gamma * Math.sqrt(var);
        for (long t = Math.max(firstSeq, cfg.initTokens() + 1); t < end; t++) {
            float s = score(cache, t);
            if (!Float.isNaN(s) && s > threshold) {
                boundaries.add(t);
            }
        }
    }

    /**
     * EM-LLM's refinement: each boundary found in this step moves within {@code (previous + minTokens, boundary]} to the
     * split of the neighbourhood {@code [previous - half, boundary + half]} that maximises modularity (or minimises
     * conductance) of the graph whose edge weights are dot products of raw keys, summed over heads and the layers
     * from {@code refineFromLayer}. Boundaries only move; their number stays.
     */
    void refine(
            TreeSet<Long> boundaries,
            long packedEnd,
            KvCache cache,
            long firstSeq,
            long end,
            RetrievalSettings.Surprise sp) {
        List<Long> found = new ArrayList<>(boundaries.subSet(firstSeq, end));
        if (found.isEmpty()) {
            return;
        }
        Long before = boundaries.lower(firstSeq);
        long prev = before == null ? Math.max(cfg.initTokens(), packedEnd) : before;
        int fromLayer = RetrievalSettings.refineFrom(sp.refineFromLayer(), layers);
        for (long b : found) {
            if (b - prev < sp.minTokens()) {
                continue; // merges into the next event at packing anyway
            }
            long half = (b - prev) / 2;
            long lo = Math.max(Math.max(cfg.initTokens(), packedEnd), prev - half);
            long hi = Math.min(end, b + half + 1);
            for (long t = lo; t < hi; t++) { // memory retention or a quarantine took out: the neighbourhood stops there
                if (cache.blockAt(t) == null) {
                    if (t < b) {
                        lo = t + 1;
                    } else {
                        hi = t;
                    }
                }
            }
            int n = (int) (hi - lo);
            if (n < 2) {
                prev = b;
                continue;
            }
            double[][] keys = new double[n][];
            float[] row = new float[kvHeads * headDim];
            for (int i = 0; i < n; i++) {
                keys[i] = new double[(layers - fromLayer) * row.length];
                KvBlock blk = cache.blockAt(lo + i);
                for (int l = fromLayer; l < layers; l++) {
                    cache.readKey(blk, l, (int) (lo + i - blk.firstSeq()), row);
                    for (int j = 0; j < row.length; j++) {
                        keys[i][(l - fromLayer) * row.length + j] = row[j];
                    }
                }
            }
            // prefix sums of the similarity matrix: P[i][j] = sum of A over [0,i) x [0,j)
            double[][] p = new double[n + 1][n + 1];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    double a = 0;
                    for (int d = 0; d < keys[i].length; d++) {
                        a += keys[i][d] * keys[j][d];
                    }
                    p[i + 1][j + 1] = a + p[i][j + 1] + p[i + 1][j] - p[i][j];
                }
            }
            double total = p[n][n];
            long best = b;
            double bestScore = Double.NaN;
            for (long t = Math.max(lo + 1, prev + sp.minTokens() + 1); t <= b && t < hi; t++) {
                int c = (int) (t - lo);
                double inS = p[c][c];
                double inT = total - p[c][n] - p[n][c] + p[c][c];
                double cut = p[c][n] - p[c][c];
                double volS = p[c][n];
                double volT = total - volS;
                double score;
                if (sp.refinement() == RetrievalSettings.Refinement.MODULARITY) {
                    double m2 = total; // 2m
                    score = m2 == 0 ? 0 : (inS + inT - (volS * volS + volT * volT) / m2) / (2 * m2);
                } else {
                    double denom = Math.min(volS, volT);
                    score = denom == 0 ? Double.POSITIVE_INFINITY : -cut / denom; // maximise -conductance
                }
                if (Double.isNaN(bestScore) || score > bestScore) {
                    bestScore = score;
                    best = t;
                }
            }
            if (best != b) {
                boundaries.remove(b);
                boundaries.add(best);
            }
            prev = best;
        }
    }

    /** {count, sum, sum of squares} of the known token scores in {@code [from, to)}. */
    private static double[] stats(KvCache cache, long from, long to) {
        double[] out = new double[3];
        List<KvBlock> all = cache.blocks();
        for (KvBlock b : all.subList(cache.firstBlockEndingAfter(from), all.size())) {
            if (b.firstSeq() >= to) {
                break;
            }
            long lo = Math.max(from, b.firstSeq());
            long hi = Math.min(to, b.firstSeq() + b.length());
            for (long t = lo; t < hi; t++) {
                float s = b.score((int) (t - b.firstSeq()));
                if (!Float.isNaN(s)) {
                    out[0]++;
                    out[1] += s;
                    out[2] += (double) s * s;
                }
            }
        }
        return out;
    }

    private static float score(KvCache cache, long seq) {
        KvBlock b = cache.blockAt(seq);
        return b == null ? Float.NaN : b.score((int) (seq - b.firstSeq()));
    }
}
