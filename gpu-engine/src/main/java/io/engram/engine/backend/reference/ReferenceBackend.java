package io.engram.engine.backend.reference;

import io.engram.engine.backend.BackendException;
import io.engram.engine.backend.BoundWeight;
import io.engram.engine.backend.HostBuf;
import io.engram.engine.backend.HostMemoryBackend;
import io.engram.engine.backend.HostWeight;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import java.util.List;

/**
 * The readable ground truth for every op: scalar loops, double accumulation, one thread, slow on purpose. Every other
 * backend is checked against it op by op ({@code BackendParityTest}).
 */
public final class ReferenceBackend extends HostMemoryBackend {

    @Override
    public Kind kind() {
        return Kind.REFERENCE;
    }

    @Override
    public String describe() {
        return "reference (scalar, double accumulation, 1 thread)";
    }

    @Override
    public BoundWeight bind(WeightTensor tensor) {
        return new HostWeight(tensor);
    }

    private static float[] row(WeightTensor t, int r) {
        float[] out = new float[t.cols()];
        Quant.decode(t.dtype(), t.data(), (long) r * t.cols(), out, 0, t.cols());
        return out;
    }

    @Override
    public void getRows(BoundWeight table, int[] ids, Buf out) {
        WeightTensor t = HostWeight.of(table);
        float[] o = HostBuf.of(out);
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= t.rows()) {
                throw new BackendException(
                        "get_rows: id %d outside [0, %d) of %s".formatted(ids[i], t.rows(), t.name()));
            }
            System.arraycopy(row(t, ids[i]), 0, o, i * t.cols(), t.cols());
        }
    }

    @Override
    public void rmsNorm(Buf x, BoundWeight gamma, float eps, int n, int dim, Buf out) {
        float[] a = HostBuf.of(x);
        float[] o = HostBuf.of(out);
        float[] g = row(HostWeight.of(gamma), 0);
        for (int i = 0; i < n; i++) {
            double ss = 0;
            for (int j = 0; j < dim; j++) {
                ss += (double) a[i * dim + j] * a[i * dim + j];
            }
            double inv = 1.0 / Math.sqrt(ss / dim + eps);
            for (int j = 0; j < dim; j++) {
                o[i * dim + j] = (float) (a[i * dim + j] * inv * g[j]);
            }
        }
    }

    @Override
    public void matmul(BoundWeight w, Buf x, int n, Buf out) {
        WeightTensor t = HostWeight.of(w);
        float[] a = HostBuf.of(x);
        float[] o = HostBuf.of(out);
        int rows = t.rows();
        int cols = t.cols();
        for (int r = 0; r < rows; r++) {
            float[] wr = row(t, r);
            for (int i = 0; i < n; i++) {
                double s = 0;
                for (int j = 0; j < cols; j++) {
                    s += (double) wr[j] * a[i * cols + j];
                }
                o[i * rows + r] = (float) s;
            }
        }
    }

    @Override
    public void addBias(Buf x, BoundWeight bias, int n) {
        float[] a = HostBuf.of(x);
        float[] b = row(HostWeight.of(bias), 0);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < b.length; j++) {
                a[i * b.length + j] += b[j];
            }
        }
    }

    @Override
    public void add(Buf acc, Buf x, int len) {
        float[] a = HostBuf.of(acc);
        float[] b = HostBuf.of(x);
        for (int i = 0; i < len; i++) {
            a[i] += b[i];
        }
    }

    @Override
    public void swiglu(Buf gate, Buf up, int len, Buf out) {
        float[] g = HostBuf.of(gate);
        float[] u = HostBuf.of(up);
        float[] o = HostBuf.of(out);
        for (int i = 0; i < len; i++) {
            double v = g[i];
            o[i] = (float) (v / (1.0 + Math.exp(-v)) * u[i]);
        }
    }

    @Override
    public void attention(
            int layer,
            Buf q,
            int n,
            long[] qSeq,
            AttentionPlan plan,
            RopeTable rope,
            AttentionShape shape,
            float scale,
            Buf out) {
        float[] qa = HostBuf.of(q);
        float[] o = HostBuf.of(out);
        int hd = shape.headDim();
        int group = shape.heads() / shape.kvHeads();
        int kvDim = shape.kvDim();
        float[] cs = new float[hd / 2];
        float[] sn = new float[hd / 2];
        float[] qh = new float[hd];
        float[] kh = new float[hd];
        double[][] mass = new double[shape.kvHeads()][];
        for (int g = 0; g < shape.kvHeads(); g++) {
            int total = 0;
            for (KvSpan s : plan.spans(g)) {
                total += s.length();
            }
            mass[g] = new double[total];
        }
        for (int i = 0; i < n; i++) {
            for (int h = 0; h < shape.heads(); h++) {
                int g = h / group;
                System.arraycopy(qa, i * shape.qDim() + h * hd, qh, 0, hd);
                rope.angles(plan.queryPositions()[i], cs, sn);
                rope.rotate(qh, 0, cs, sn);
                List<KvSpan> spans = plan.spans(g);
                int total = 0;
                for (KvSpan s : spans) {
                    total += s.length();
                }
                double[] scores = new double[total];
                boolean[] visible = new boolean[total];
                int k = 0;
                double max = Double.NEGATIVE_INFINITY;
                for (KvSpan s : spans) {
                    float[] keys = HostBuf.of(s.block().keys(layer));
                    for (int slot = s.from(); slot < s.to(); slot++, k++) {
                        if (s.block().seq(slot) > qSeq[i]) {
                            continue;
                        }
                        System.arraycopy(keys, slot * kvDim + g * hd, kh, 0, hd);
                        rope.angles(s.positionOf(slot), cs, sn);
                        rope.rotate(kh, 0, cs, sn);
                        double d = 0;
                        for (int j = 0; j < hd; j++) {
                            d += (double) qh[j] * kh[j];
                        }
                        scores[k] = d * scale;
                        visible[k] = true;
                        max = Math.max(max, scores[k]);
                    }
                }
                if (max == Double.NEGATIVE_INFINITY) {
                    throw new BackendException(
                            "attention: query %d (seq %d) of layer %d sees no key".formatted(i, qSeq[i], layer));
                }
                double sum = 0;
                for (int j = 0; j < total; j++) {
                    scores[j] = visible[j] ? Math.exp(scores[j] - max) : 0;
                    sum += scores[j];
                }
                double[] acc = new double[hd];
                k = 0;
                for (KvSpan s : spans) {
                    float[] vals = HostBuf.of(s.block().values(layer));
                    for (int slot = s.from(); slot < s.to(); slot++, k++) {
                        if (!visible[k]) {
                            continue;
                        }
                        double p = scores[k] / sum;
                        mass[g][k] += p;
                        for (int j = 0; j < hd; j++) {
                            acc[j] += p * vals[slot * kvDim + g * hd + j];
                        }
                    }
                }
                for (int j = 0; j < hd; j++) {
                    o[i * shape.qDim() + h * hd + j] = (float) acc[j];
                }
            }
        }
        if (plan.observer() != null) {
            for (int g = 0; g < shape.kvHeads(); g++) {
                float[] m = new float[mass[g].length];
                for (int j = 0; j < m.length; j++) {
                    m[j] = (float) mass[g][j];
                }
                int off = 0;
                for (KvSpan s : plan.spans(g)) {
                    plan.observer().observe(layer, g, s, m, off);
                    off += s.length();
                }
            }
        }
    }

    @Override
    public void close() {}
}
