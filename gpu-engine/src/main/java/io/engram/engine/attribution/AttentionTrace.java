package io.engram.engine.attribution;

import io.engram.engine.kv.AttentionObserver;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.memory.duo.HeadPattern;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;

/**
 * The fast attribution tier: collects, while an answer is generated, the attention mass that the retrieval heads put
 * on each memory token, and sums it per {@link Segment}. Only keys the memory policy actually let a head attend to
 * reach the observer, so with InfLLM/EM-LLM these are the units retrieved for the answer; with DuoAttention only the
 * retrieval heads of its head pattern count (streaming heads see sinks and the recent window, which is no evidence).
 *
 * <p>Which steps count: those that feed one token (decode steps, each predicting the next answer token), since their
 * attention is what the answer's tokens were computed from, and of each head's row at such a step only its {@link
 * #PEAK_TOKENS} most attended tokens (a head that spreads its attention over the recent window would otherwise outweigh
 * the heads that point at what the answer copies); the prompt's prefill rows attend for the question as much
 * as for the answer. When the answer has a single token there is no decode step, and the prefill step's mass is used.
 * The first {@link #SINK_TOKENS} tokens of a stream collect attention whatever they say (attention sinks) and untagged
 * tokens (separators, the question itself) are no source: neither counts.
 *
 * <p>Besides the mass it records which memory tokens each layer's plan let the answer attend to, whatever the head and
 * the mass ({@link #retrieved}): the spans the policy used, for the memory map.
 *
 * <p>Not thread-safe; one instance per answer. Memory: one double per sequence index of the session, and one bit per
 * (layer, sequence index).
 */
public final class AttentionTrace implements AttentionObserver {
    /** StreamingLLM's attention-sink count (algorithms.md section 1.3). */
    public static final int SINK_TOKENS = 4;

    private final HeadPattern heads;
    private double[] decodeMass = new double[256]; // (sequence index) mass from decode steps
    private double[] prefillMass = new double[256]; // (sequence index) mass from prefill steps
    private boolean decodeStep;
    private boolean anyDecode;
    private final List<BitSet> seenByLayer =
            new ArrayList<>(); // (layer) sequence indices the layer's plans attended to
    private final BitSet cuts =
            new BitSet(); // sequence indices where a block or a FIXED span (a retrieved unit) starts

    /** Tokens of one head's attention row at a decode step whose mass counts (its peaks). */
    public static final int PEAK_TOKENS = 8;
    // the current decode step's rows, per (layer, kv head): sequence indices and masses, flushed to their peaks
    private final java.util.Map<Long, double[]> rows = new java.util.HashMap<>();

    /** @param heads retrieval heads whose mass counts, or null for every head */
    public AttentionTrace(HeadPattern heads) {
        this.heads = heads;
    }

    /** Marks the start of a forward step of {@code n} tokens: observations until the next call belong to it. */
    @Override
    public void beginStep(long firstSeq, int n) {
        flushRows();
        decodeStep = n == 1;
        anyDecode |= decodeStep;
    }

    @Override
    public void observe(int layer, int kvHead, KvSpan span, float[] mass, int offset) {
        if (span.length() > 0) {
            while (seenByLayer.size() <= layer) {
                seenByLayer.add(new BitSet());
            }
            long first = span.block().seq(span.from());
            seenByLayer.get(layer).set((int) first, (int) (first + span.length()));
            cuts.set((int) span.block().firstSeq());
            if (span.positions() == KvSpan.Positions.FIXED) {
                cuts.set((int) first);
            }
        }
        if (heads != null && !heads.isRetrieval(layer, kvHead)) {
            return;
        }
        for (int j = 0; j < span.length(); j++) {
            int slot = span.from() + j;
            long seq = span.block().seq(slot);
            float m = mass[offset + j];
            if (m <= 0 || seq < SINK_TOKENS || span.block().source(slot) == Provenance.NONE) {
                continue;
            }
            if (decodeStep) {
                // a decode step's row: only its peaks count (flushRows), so a head that spreads its attention over the
                // recent window does not outweigh the heads that point at the tokens the answer copies
                long key = ((long) layer << 32) | kvHead;
                double[] row = rows.computeIfAbsent(key, k -> new double[2 * PEAK_TOKENS]);
                addPeak(row, seq, m);
                continue;
            }
            if (seq >= prefillMass.length) {
                prefillMass = Arrays.copyOf(prefillMass, (int) Math.max(seq + 1, prefillMass.length * 2L));
            }
            prefillMass[(int) seq] += m;
        }
    }

    /** Keeps the {@link #PEAK_TOKENS} largest (seq, mass) pairs of a row: {@code row[2i]} seq, {@code row[2i+1]} mass. */
    private static void addPeak(double[] row, long seq, float m) {
        int weakest = 0;
        for (int i = 1; i < PEAK_TOKENS; i++) {
            if (row[2 * i + 1] < row[2 * weakest + 1]) {
                weakest = i;
            }
        }
        if (m > row[2 * weakest + 1]) {
            row[2 * weakest] = seq;
            row[2 * weakest + 1] = m;
        }
    }

    private void flushRows() {
        for (double[] row : rows.values()) {
            for (int i = 0; i < PEAK_TOKENS; i++) {
                double m = row[2 * i + 1];
                if (m <= 0) {
                    continue;
                }
                int seq = (int) row[2 * i];
                if (seq >= decodeMass.length) {
                    decodeMass = Arrays.copyOf(decodeMass, Math.max(seq + 1, decodeMass.length * 2));
                }
                decodeMass[seq] += m;
            }
        }
        rows.clear();
    }

    /**
     * Each segment's share of the counted mass, by segment index; all zero when no mass reached any segment (e.g. the
     * policy showed the answer no memory).
     */
    public double[] segmentScores(java.util.List<Segment> segments) {
        flushRows();
        double[] mass = anyDecode ? decodeMass : prefillMass;
        double[] out = new double[segments.size()];
        double total = 0;
        for (Segment s : segments) {
            double sum = 0;
            for (long q = s.firstSeq(); q < Math.min(s.endSeq(), mass.length); q++) {
                sum += mass[(int) q];
            }
            out[s.index()] = sum;
            total += sum;
        }
        if (total > 0) {
            for (int i = 0; i < out.length; i++) {
                out[i] /= total;
            }
        }
        return out;
    }

    /** Mass on sequence index {@code seq} (for tests and the citation's peak). */
    public double massAt(long seq) {
        flushRows();
        double[] mass = anyDecode ? decodeMass : prefillMass;
        return seq < mass.length ? mass[(int) seq] : 0;
    }

    /**
     * A run of memory tokens the answer attended to: tokens {@code [firstSeq, endSeq)} (end exclusive), inside one
     * block and one span the policy planned, that {@code layers} layers attended to during the answer.
     */
    public record Span(long firstSeq, long endSeq, int layers) {}

    /**
     * The distinct memory spans the plans of the answer's steps let any layer attend to, before sequence index
     * {@code end} (the question's first token: the question and the answer are no memory), in order. A span is cut at
     * block starts, at the starts of the spans the policy placed at a fixed position (InfLLM/EM-LLM units, the init
     * tokens, the unpacked remainder) and where the number of layers changes; so with a retrieval policy each retrieved
     * unit is one span (or one per block it covers), and with full attention each block before {@code end} is one.
     */
    public List<Span> retrieved(long end) {
        BitSet any = new BitSet();
        for (BitSet b : seenByLayer) {
            any.or(b);
        }
        List<Span> out = new ArrayList<>();
        int stop = (int) Math.min(end, Integer.MAX_VALUE);
        int s = any.nextSetBit(0);
        while (s >= 0 && s < stop) {
            int layers = layersAt(s);
            int e = s + 1;
            while (e < stop && any.get(e) && !cuts.get(e) && layersAt(e) == layers) {
                e++;
            }
            out.add(new Span(s, e, layers));
            s = any.nextSetBit(e);
        }
        return out;
    }

    private int layersAt(int seq) {
        int n = 0;
        for (BitSet b : seenByLayer) {
            if (b.get(seq)) {
                n++;
            }
        }
        return n;
    }
}
