package io.engram.engine.backend.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.Backend;
import io.engram.engine.backend.RopeStyle;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.tensor.Buf;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * A row's attention is the same bit for bit whichever kernel variant computes it (alone, or paired with another row),
 * and so a query's output does not depend on how many queries share the call. Closeness to a double-precision
 * reference is {@code BackendParityTest}'s.
 */
class AttentionKernelsTest {
    @Test
    void pairedKernelsGiveEachRowItsSingleResult() {
        SplittableRandom r = new SplittableRandom(21);
        for (int hd : new int[] {8, 16, 48, 64, 128}) {
            for (int len : new int[] {0, 1, 7, 16, 31, 64, 100, 133}) {
                int stride = len + 5;
                float[] kT = gaussian(r, hd * stride + 3);
                float[] qa = gaussian(r, hd);
                float[] qb = gaussian(r, hd);
                float[] sa = new float[len + 2], sb = new float[len + 2], one = new float[len + 2];
                AttentionKernels.scores2(qa, qb, hd, kT, 3, stride, len, 0.125f, sa, sb, 0);
                AttentionKernels.scores(qa, hd, kT, 3, stride, len, 0.125f, one, 0);
                assertThat(bits(sa))
                        .as("scores of row a, hd %d, %d keys", hd, len)
                        .isEqualTo(bits(one));
                AttentionKernels.scores(qb, hd, kT, 3, stride, len, 0.125f, one, 0);
                assertThat(bits(sb))
                        .as("scores of row b, hd %d, %d keys", hd, len)
                        .isEqualTo(bits(one));

                float[] v = gaussian(r, len * (hd + 4) + 1);
                float[] pa = weights(r, len), pb = weights(r, len);
                float[] accA = gaussian(r, hd), accB = gaussian(r, hd);
                float[] wantA = accA.clone(), wantB = accB.clone();
                AttentionKernels.weightedValues2(pa, pb, 0, 0.5f, 0.25f, v, 1, hd + 4, len, hd, accA, accB);
                AttentionKernels.weightedValues(pa, 0, 0.5f, v, 1, hd + 4, len, hd, wantA);
                AttentionKernels.weightedValues(pb, 0, 0.25f, v, 1, hd + 4, len, hd, wantB);
                assertThat(bits(accA))
                        .as("values of row a, hd %d, %d keys", hd, len)
                        .isEqualTo(bits(wantA));
                assertThat(bits(accB))
                        .as("values of row b, hd %d, %d keys", hd, len)
                        .isEqualTo(bits(wantB));
            }
        }
    }

    @Test
    void aQueryGetsTheSameOutputAloneAsInAChunk() {
        // one query head per KV head: rows pair up across queries in a chunk, and a query alone runs the single kernels
        for (int heads : new int[] {2, 4}) {
            int kvHeads = 2;
            int hd = 64;
            int kvDim = kvHeads * hd;
            SplittableRandom r = new SplittableRandom(heads);
            double[] inv = new double[hd / 2];
            for (int i = 0; i < inv.length; i++) {
                inv[i] = Math.pow(10000, -2.0 * i / hd);
            }
            RopeTable rope = new RopeTable(RopeStyle.HALF, hd, inv, 512);
            Backend.AttentionShape shape = new Backend.AttentionShape(heads, kvHeads, hd);
            int n = 5;
            int past = 150;
            try (CpuBackend be = new CpuBackend(1, false)) {
                List<KvSpan> spans = new ArrayList<>();
                for (int s = 0; s < past + n; s += 64) {
                    int len = Math.min(64, past + n - s);
                    Buf kb = be.allocate(64 * kvDim), vb = be.allocate(64 * kvDim);
                    be.write(kb, 0, gaussian(r, len * kvDim), 0, len * kvDim);
                    be.write(vb, 0, gaussian(r, len * kvDim), 0, len * kvDim);
                    KvBlock b = new KvBlock(s / 64, s, 64, new Buf[] {kb}, new Buf[] {vb});
                    int[] pos = new int[len];
                    for (int j = 0; j < len; j++) {
                        pos[j] = s + j;
                    }
                    b.append(new int[len], pos, null, 0, len);
                    spans.add(s == 64 ? new KvSpan(b, 0, len, KvSpan.Positions.FIXED, 0) : KvSpan.stored(b));
                }
                float[] q = gaussian(r, n * heads * hd);
                long[] qSeq = new long[n];
                int[] qPos = new int[n];
                for (int i = 0; i < n; i++) {
                    qSeq[i] = past + i;
                    qPos[i] = past + i;
                }
                float[] chunk = attend(be, q, n, qSeq, qPos, spans, kvHeads, rope, shape);
                for (int i = 0; i < n; i++) {
                    float[] qi = Arrays.copyOfRange(q, i * heads * hd, (i + 1) * heads * hd);
                    float[] alone =
                            attend(be, qi, 1, new long[] {qSeq[i]}, new int[] {qPos[i]}, spans, kvHeads, rope, shape);
                    assertThat(bits(alone))
                            .as("%d heads, query %d", heads, i)
                            .isEqualTo(bits(Arrays.copyOfRange(chunk, i * heads * hd, (i + 1) * heads * hd)));
                }
            }
        }
    }

    private static float[] attend(
            CpuBackend be,
            float[] q,
            int n,
            long[] qSeq,
            int[] qPos,
            List<KvSpan> spans,
            int kvHeads,
            RopeTable rope,
            Backend.AttentionShape shape) {
        List<List<KvSpan>> perHead = new ArrayList<>();
        for (int g = 0; g < kvHeads; g++) {
            perHead.add(spans);
        }
        Buf qb = be.allocate(q.length);
        be.write(qb, 0, q, 0, q.length);
        Buf out = be.allocate(q.length);
        be.attention(0, qb, n, qSeq, new AttentionPlan(perHead, qPos), rope, shape, 0.125f, out);
        float[] o = new float[q.length];
        be.read(out, 0, o, 0, o.length);
        return o;
    }

    private static float[] weights(SplittableRandom r, int n) {
        float[] w = new float[n];
        for (int i = 0; i < n; i++) {
            w[i] = r.nextInt(4) == 0 ? 0f : (float) r.nextDouble();
        }
        return w;
    }

    private static float[] gaussian(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    private static int[] bits(float[] x) {
        int[] b = new int[x.length];
        for (int i = 0; i < x.length; i++) {
            b[i] = Float.floatToRawIntBits(x[i]);
        }
        return b;
    }
}
