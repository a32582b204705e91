package io.engram.engine.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The loops of {@link CpuAttention}: scores of a query row against keys stored transposed, the softmax's max and
 * exponentials, and the weighted sum of value rows; each for one row and for two rows that share every key and value
 * loaded (two query heads of one KV head, or two queries). A row's result is the same bit for bit whichever variant
 * computes it: each lane runs the same {@code fma}s in the same order, and a key of weight 0 is skipped per row.
 */
final class AttentionKernels {
    private static final VectorSpecies<Float> F = Simd.F;
    private static final int P = F.length();

    private AttentionKernels() {}

    /** The largest of {@code s[0, n)} (max is exact: the order does not matter). */
    static float max(float[] s, int n) {
        int t = 0;
        float max = Float.NEGATIVE_INFINITY;
        if (n >= P) {
            FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (; t + P <= n; t += P) {
                m = m.max(FloatVector.fromArray(F, s, t));
            }
            max = m.reduceLanes(VectorOperators.MAX);
        }
        for (; t < n; t++) {
            max = Math.max(max, s[t]);
        }
        return max;
    }

    /**
     * {@code s[t] = e^(s[t] - max)} for {@code t < n} (0 for masked keys at -infinity), returning their sum: lane sums
     * of whole vectors, then the tail in order (the same for every call over {@code n} scores).
     */
    static float exponentiate(float[] s, int n, float max) {
        int t = 0;
        float sum = 0f;
        if (n >= P) {
            FloatVector acc = FloatVector.zero(F);
            for (; t + P <= n; t += P) {
                FloatVector e =
                        Simd.expNonPositive(FloatVector.fromArray(F, s, t).sub(max));
                e.intoArray(s, t);
                acc = acc.add(e);
            }
            sum = Simd.sumLanes(acc);
        }
        for (; t < n; t++) {
            float e = Simd.expNonPositive(s[t] - max);
            s[t] = e;
            sum += e;
        }
        return sum;
    }

    /**
     * {@code out[o + j] = (q . key j) * scale} for keys {@code j < len} stored transposed from {@code kT[k0]} with
     * {@code stride} floats between dimensions: fma over the dimensions in order, four vectors of keys at a time.
     */
    static void scores(float[] q, int hd, float[] kT, int k0, int stride, int len, float scale, float[] out, int o) {
        int j = 0;
        for (; j + 4 * P <= len; j += 4 * P) {
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            int at = k0 + j;
            for (int d = 0; d < hd; d++, at += stride) {
                FloatVector b = FloatVector.broadcast(F, q[d]);
                a0 = FloatVector.fromArray(F, kT, at).fma(b, a0);
                a1 = FloatVector.fromArray(F, kT, at + P).fma(b, a1);
                a2 = FloatVector.fromArray(F, kT, at + 2 * P).fma(b, a2);
                a3 = FloatVector.fromArray(F, kT, at + 3 * P).fma(b, a3);
            }
            a0.mul(scale).intoArray(out, o + j);
            a1.mul(scale).intoArray(out, o + j + P);
            a2.mul(scale).intoArray(out, o + j + 2 * P);
            a3.mul(scale).intoArray(out, o + j + 3 * P);
        }
        for (; j + P <= len; j += P) {
            FloatVector a = FloatVector.zero(F);
            int at = k0 + j;
            for (int d = 0; d < hd; d++, at += stride) {
                a = FloatVector.fromArray(F, kT, at).fma(FloatVector.broadcast(F, q[d]), a);
            }
            a.mul(scale).intoArray(out, o + j);
        }
        for (; j < len; j++) {
            float s = 0f;
            int at = k0 + j;
            for (int d = 0; d < hd; d++, at += stride) {
                s = Math.fma(kT[at], q[d], s);
            }
            out[o + j] = s * scale;
        }
    }

    /**
     * {@code acc[0, hd) += (p[p0 + j] * inv) * v[v0 + j * stride, + hd)} over the keys {@code j < len} in order, skipping
     * keys of weight 0: per 4, 2 or 1 vectors of dimensions, accumulators held in registers across the keys.
     */
    static void weightedValues(
            float[] p, int p0, float inv, float[] v, int v0, int stride, int len, int hd, float[] acc) {
        weightedValuesFrom(p, p0, inv, v, v0, stride, len, hd, acc, 0);
    }

    /** {@link #weightedValues} for dimensions {@code [d0, hd)}. */
    private static void weightedValuesFrom(
            float[] p, int p0, float inv, float[] v, int v0, int stride, int len, int hd, float[] acc, int d0) {
        int d = d0;
        for (; d + 4 * P <= hd; d += 4 * P) {
            FloatVector a0 = FloatVector.fromArray(F, acc, d);
            FloatVector a1 = FloatVector.fromArray(F, acc, d + P);
            FloatVector a2 = FloatVector.fromArray(F, acc, d + 2 * P);
            FloatVector a3 = FloatVector.fromArray(F, acc, d + 3 * P);
            for (int j = 0; j < len; j++) {
                float w = p[p0 + j];
                if (w == 0f) {
                    continue;
                }
                FloatVector b = FloatVector.broadcast(F, w * inv);
                int at = v0 + j * stride + d;
                a0 = FloatVector.fromArray(F, v, at).fma(b, a0);
                a1 = FloatVector.fromArray(F, v, at + P).fma(b, a1);
                a2 = FloatVector.fromArray(F, v, at + 2 * P).fma(b, a2);
                a3 = FloatVector.fromArray(F, v, at + 3 * P).fma(b, a3);
            }
            a0.intoArray(acc, d);
            a1.intoArray(acc, d + P);
            a2.intoArray(acc, d + 2 * P);
            a3.intoArray(acc, d + 3 * P);
        }
        for (; d + P <= hd; d += P) {
            FloatVector a = FloatVector.fromArray(F, acc, d);
            for (int j = 0; j < len; j++) {
                float w = p[p0 + j];
                if (w != 0f) {
                    a = FloatVector.fromArray(F, v, v0 + j * stride + d).fma(FloatVector.broadcast(F, w * inv), a);
                }
            }
            a.intoArray(acc, d);
        }
        if (d < hd) {
            for (int j = 0; j < len; j++) {
                float w = p[p0 + j];
                if (w != 0f) {
                    float alpha = w * inv;
                    int at = v0 + j * stride;
                    for (int e = d; e < hd; e++) {
                        acc[e] = Math.fma(v[at + e], alpha, acc[e]);
                    }
                }
            }
        }
    }

    /** {@link #scores} for two query rows over the same {@code len} keys, sharing each key vector loaded. */
    static void scores2(
            float[] qa,
            float[] qb,
            int hd,
            float[] kT,
            int k0,
            int stride,
            int len,
            float scale,
            float[] outA,
            float[] outB,
            int o) {
        int j = 0;
        for (; j + 2 * P <= len; j += 2 * P) {
            FloatVector a0 = FloatVector.zero(F), a1 = a0, b0 = a0, b1 = a0;
            int at = k0 + j;
            for (int d = 0; d < hd; d++, at += stride) {
                FloatVector x = FloatVector.broadcast(F, qa[d]);
                FloatVector y = FloatVector.broadcast(F, qb[d]);
                FloatVector k0v = FloatVector.fromArray(F, kT, at);
                FloatVector k1v = FloatVector.fromArray(F, kT, at + P);
                a0 = k0v.fma(x, a0);
                a1 = k1v.fma(x, a1);
                b0 = k0v.fma(y, b0);
                b1 = k1v.fma(y, b1);
            }
            a0.mul(scale).intoArray(outA, o + j);
            a1.mul(scale).intoArray(outA, o + j + P);
            b0.mul(scale).intoArray(outB, o + j);
            b1.mul(scale).intoArray(outB, o + j + P);
        }
        for (; j + P <= len; j += P) {
            FloatVector a = FloatVector.zero(F), b = a;
            int at = k0 + j;
            for (int d = 0; d < hd; d++, at += stride) {
                FloatVector kv = FloatVector.fromArray(F, kT, at);
                a = kv.fma(FloatVector.broadcast(F, qa[d]), a);
                b = kv.fma(FloatVector.broadcast(F, qb[d]), b);
            }
            a.mul(scale).intoArray(outA, o + j);
            b.mul(scale).intoArray(outB, o + j);
        }
        for (; j < len; j++) {
            float a = 0f, b = 0f;
            int at = k0 + j;
            for (int d = 0; d < hd; d++, at += stride) {
                a = Math.fma(kT[at], qa[d], a);
                b = Math.fma(kT[at], qb[d], b);
            }
            outA[o + j] = a * scale;
            outB[o + j] = b * scale;
        }
    }

    /** {@link #weightedValues} for two rows of weights over the same value rows, sharing each value vector loaded. */
    static void weightedValues2(
            float[] pa,
            float[] pb,
            int p0,
            float invA,
            float invB,
            float[] v,
            int v0,
            int stride,
            int len,
            int hd,
            float[] accA,
            float[] accB) {
        int d = 0;
        for (; d + 2 * P <= hd; d += 2 * P) {
            FloatVector a0 = FloatVector.fromArray(F, accA, d);
            FloatVector a1 = FloatVector.fromArray(F, accA, d + P);
            FloatVector b0 = FloatVector.fromArray(F, accB, d);
            FloatVector b1 = FloatVector.fromArray(F, accB, d + P);
            for (int j = 0; j < len; j++) {
                float wa = pa[p0 + j];
                float wb = pb[p0 + j];
                if (wa == 0f && wb == 0f) {
                    continue;
                }
                int at = v0 + j * stride + d;
                FloatVector x0 = FloatVector.fromArray(F, v, at);
                FloatVector x1 = FloatVector.fromArray(F, v, at + P);
                if (wa != 0f) {
                    FloatVector w = FloatVector.broadcast(F, wa * invA);
                    a0 = x0.fma(w, a0);
                    a1 = x1.fma(w, a1);
                }
                if (wb != 0f) {
                    FloatVector w = FloatVector.broadcast(F, wb * invB);
                    b0 = x0.fma(w, b0);
                    b1 = x1.fma(w, b1);
                }
            }
            a0.intoArray(accA, d);
            a1.intoArray(accA, d + P);
            b0.intoArray(accB, d);
            b1.intoArray(accB, d + P);
        }
        if (d < hd) {
            // what is left (fewer than two vectors of dimensions): each row alone, from dimension d
            weightedValuesFrom(pa, p0, invA, v, v0, stride, len, hd, accA, d);
            weightedValuesFrom(pb, p0, invB, v, v0, stride, len, hd, accB, d);
        }
    }
}
