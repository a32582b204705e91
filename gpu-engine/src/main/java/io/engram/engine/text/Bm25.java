package io.engram.engine.text;

/**
 * Okapi BM25 of one query over a set of documents, with document frequencies counted over the same documents: a term
 * every document holds weighs about nothing, a term one document holds weighs most. The caller counts the query's
 * terms in each document (tokens, pairs of tokens: whatever its terms are).
 */
public final class Bm25 {

    /** Term-frequency saturation and length normalisation (the usual values). */
    public static final double K1 = 1.2;

    public static final double B = 0.75;

    private Bm25() {}

    /**
     * @param counts per document, how often each query term occurs in it ({@code counts[d][t]}, every row as long as
     *     the query has terms)
     * @param lengths per document, its length in tokens
     * @return per document its score, 0 where it holds no query term
     */
    public static double[] scores(int[][] counts, int[] lengths) {
        int n = counts.length;
        double[] out = new double[n];
        if (n == 0 || counts[0].length == 0) {
            return out;
        }
        int terms = counts[0].length;
        int[] df = new int[terms];
        long total = 0;
        for (int d = 0; d < n; d++) {
            total += lengths[d];
            for (int t = 0; t < terms; t++) {
                if (counts[d][t] > 0) {
                    df[t]++;
                }
            }
        }
        double avg = Math.max(1e-9, (double) total / n);
        double[] idf = new double[terms];
        for (int t = 0; t < terms; t++) {
            idf[t] = Math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5));
        }
        for (int d = 0; d < n; d++) {
            double norm = K1 * (1 - B + B * lengths[d] / avg);
            double s = 0;
            for (int t = 0; t < terms; t++) {
                int f = counts[d][t];
                if (f > 0) {
                    s += idf[t] * f * (K1 + 1) / (f + norm);
                }
            }
            out[d] = s;
        }
        return out;
    }
}
