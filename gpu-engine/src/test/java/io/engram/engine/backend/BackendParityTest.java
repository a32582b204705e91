package io.engram.engine.backend;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.backend.reference.ReferenceBackend;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every op of the CPU backend against the reference backend on seeded random inputs over odd shapes, each storage
 * type and GQA ratios. Tolerances are relative to the magnitude of the result (float vs double accumulation).
 */
class BackendParityTest {
    static final Arena ARENA = Arena.ofShared();
    final ReferenceBackend ref = new ReferenceBackend();
    final CpuBackend cpu = new CpuBackend(2, false);

    @AfterAll
    static void free() {
        ARENA.close();
    }

    static float[] random(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    static WeightTensor tensor(String name, DType t, int rows, int cols, float[] data) {
        long[] shape = rows == 1 ? new long[] {cols} : new long[] {rows, cols};
        MemorySegment seg = ARENA.allocate(t.bytesFor((long) rows * cols), 8);
        for (int r = 0; r < rows; r++) {
            long off = r * t.bytesFor(cols);
            switch (t) {
                case F32 -> {
                    for (int j = 0; j < cols; j++) seg.set(Quant.F32_LE, off + 4L * j, data[r * cols + j]);
                }
                case F16 -> {
                    for (int j = 0; j < cols; j++)
                        seg.set(Quant.I16_LE, off + 2L * j, Float.floatToFloat16(data[r * cols + j]));
                }
                case BF16 -> {
                    for (int j = 0; j < cols; j++)
                        seg.set(Quant.I16_LE, off + 2L * j, Quant.floatToBf16(data[r * cols + j]));
                }
                case Q8_0 -> Quant.encodeQ8_0(data, r * cols, cols, seg, off);
                default -> throw new IllegalArgumentException(t.name());
            }
        }
        return new WeightTensor(name, t, shape, seg);
    }

    static void assertClose(String what, float[] a, float[] b, double rel) {
        double scale = 1e-6;
        for (float x : b) {
            scale = Math.max(scale, Math.abs(x));
        }
        int worst = 0;
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            double e = Math.abs(a[i] - b[i]);
            if (e > d) {
                d = e;
                worst = i;
            }
        }
        assertThat(d / scale)
                .as("%s: worst index %d cpu %s ref %s", what, worst, a[worst], b[worst])
                .isLessThanOrEqualTo(rel);
    }

    float[] run(Backend be, java.util.function.Function<Backend, Buf> op, int len) {
        float[] out = new float[len];
        be.read(op.apply(be), 0, out, 0, len);
        return out;
    }

    Buf load(Backend be, float[] a) {
        Buf b = be.allocate(a.length);
        be.write(b, 0, a, 0, a.length);
        return b;
    }

    @ParameterizedTest(name = "matmul {0} {1}x{2}, n={3}")
    @CsvSource({
        "F32, 37, 64, 1",
        "F32, 131, 96, 5",
        "F16, 33, 64, 3",
        "BF16, 65, 128, 2",
        "BF16, 67, 100, 1",
        "BF16, 64, 256, 3",
        "Q8_0, 50, 96, 4",
        "F32, 300, 1024, 1"
    })
    void matmul(DType t, int rows, int cols, int n) {
        SplittableRandom r = new SplittableRandom(rows * 31L + cols);
        WeightTensor w = tensor("w", t, rows, cols, random(r, rows * cols));
        float[] x = random(r, n * cols);
        float[] a = run(
                cpu,
                be -> {
                    Buf o = be.allocate(n * rows);
                    be.matmul(be.bind(w), load(be, x), n, o);
                    return o;
                },
                n * rows);
        float[] b = run(
                ref,
                be -> {
                    Buf o = be.allocate(n * rows);
                    be.matmul(be.bind(w), load(be, x), n, o);
                    return o;
                },
                n * rows);
        assertClose("matmul " + t, a, b, 1e-5);
    }

    @Test
    void requantizedQ8WeightsStayCloseToFloat() {
        SplittableRandom r = new SplittableRandom(5);
        WeightTensor w = tensor("w", DType.F32, 64, 128, random(r, 64 * 128));
        float[] x = random(r, 128);
        try (CpuBackend q8 = new CpuBackend(1, true)) {
            BoundWeight bw = q8.bind(w);
            assertThat(bw.dtype()).isEqualTo(DType.Q8_0);
            float[] a = run(
                    q8,
                    be -> {
                        Buf o = be.allocate(64);
                        be.matmul(bw, load(be, x), 1, o);
                        return o;
                    },
                    64);
            float[] b = run(
                    ref,
                    be -> {
                        Buf o = be.allocate(64);
                        be.matmul(be.bind(w), load(be, x), 1, o);
                        return o;
                    },
                    64);
            assertClose("q8 requantized matmul", a, b, 2e-2);
        }
    }

    @ParameterizedTest(name = "rms_norm + get_rows + swiglu {0}")
    @CsvSource({"F32", "F16", "BF16"})
    void elementwise(DType t) {
        SplittableRandom r = new SplittableRandom(11);
        int dim = 72, n = 3;
        WeightTensor gamma = tensor("g", t, 1, dim, random(r, dim));
        WeightTensor emb = tensor("e", t, 10, dim, random(r, 10 * dim));
        float[] x = random(r, n * dim);
        float[] y = random(r, n * dim);
        int[] ids = {3, 9, 0};
        for (Backend be : List.<Backend>of(cpu, ref)) {
            assertThat(be.kind()).isNotNull();
        }
        assertClose(
                "rms_norm",
                run(
                        cpu,
                        be -> {
                            Buf o = be.allocate(n * dim);
                            be.rmsNorm(load(be, x), be.bind(gamma), 1e-5f, n, dim, o);
                            return o;
                        },
                        n * dim),
                run(
                        ref,
                        be -> {
                            Buf o = be.allocate(n * dim);
                            be.rmsNorm(load(be, x), be.bind(gamma), 1e-5f, n, dim, o);
                            return o;
                        },
                        n * dim),
                1e-6);
        assertClose(
                "get_rows",
                run(
                        cpu,
                        be -> {
                            Buf o = be.allocate(n * dim);
                            be.getRows(be.bind(emb), ids, o);
                            return o;
                        },
                        n * dim),
                run(
                        ref,
                        be -> {
                            Buf o = be.allocate(n * dim);
                            be.getRows(be.bind(emb), ids, o);
                            return o;
                        },
                        n * dim),
                0);
        assertClose(
                "swiglu",
                run(
                        cpu,
                        be -> {
                            Buf o = be.allocate(n * dim);
                            be.swiglu(load(be, x), load(be, y), n * dim, o);
                            return o;
                        },
                        n * dim),
                run(
                        ref,
                        be -> {
                            Buf o = be.allocate(n * dim);
                            be.swiglu(load(be, x), load(be, y), n * dim, o);
                            return o;
                        },
                        n * dim),
                1e-6);
        assertClose(
                "add_bias",
                run(
                        cpu,
                        be -> {
                            Buf o = load(be, x);
                            be.addBias(o, be.bind(gamma), n);
                            return o;
                        },
                        n * dim),
                run(
                        ref,
                        be -> {
                            Buf o = load(be, x);
                            be.addBias(o, be.bind(gamma), n);
                            return o;
                        },
                        n * dim),
                1e-7);
    }

    @ParameterizedTest(name = "attention heads {0}/{1} hd {2} n={3} {4}, blocks of {5}, fixed at {6}")
    @CsvSource({
        "4, 4, 16, 5, HALF, 8, 100",
        "8, 2, 8, 7, INTERLEAVED, 8, 100",
        "6, 3, 32, 1, HALF, 8, 100",
        "4, 1, 64, 9, HALF, 8, 100",
        // spans long enough for the CPU kernel's vector paths (4 and 1 vectors of keys, and the tail), heads of 1 to
        // 8 vectors, retrieved units at position 0 (raw keys)
        "4, 2, 64, 3, HALF, 80, 0",
        "8, 2, 128, 2, INTERLEAVED, 96, 0",
        "4, 4, 48, 4, HALF, 72, 100",
        "2, 1, 64, 1, HALF, 136, 0"
    })
    void attentionOverBlocksWithRepositionedSpans(
            int heads, int kvHeads, int hd, int n, RopeStyle style, int block, int fixedBase) {
        SplittableRandom r = new SplittableRandom(heads * 100L + hd);
        Backend.AttentionShape shape = new Backend.AttentionShape(heads, kvHeads, hd);
        int kvDim = kvHeads * hd;
        double[] inv = new double[hd / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = Math.pow(10000, -2.0 * i / hd);
        }
        RopeTable rope = new RopeTable(style, hd, inv, 64); // positions above 64 use the uncached path
        int past = 2 * block + block * 5 / 8; // 3 blocks: full, full, 5/8 full (+ n new tokens)
        int total = past + n;
        float[] k = random(r, total * kvDim);
        float[] v = random(r, total * kvDim);
        float[] q = random(r, n * heads * hd);
        long[] qSeq = new long[n];
        int[] qPos = new int[n];
        for (int i = 0; i < n; i++) {
            qSeq[i] = past + i;
            qPos[i] = past + i + 40;
        }
        float[][] outs = new float[2][];
        List<List<Float>> masses = List.of(new ArrayList<>(), new ArrayList<>());
        int bi = 0;
        for (Backend be : List.<Backend>of(cpu, ref)) {
            List<KvBlock> blocks = new ArrayList<>();
            for (int s = 0; s < total; s += block) {
                int len = Math.min(block, total - s);
                Buf kb = be.allocate(block * kvDim), vb = be.allocate(block * kvDim);
                be.write(kb, 0, k, s * kvDim, len * kvDim);
                be.write(vb, 0, v, s * kvDim, len * kvDim);
                KvBlock b = new KvBlock(s / block, s, block, new Buf[] {kb}, new Buf[] {vb});
                int[] pos = new int[len];
                for (int j = 0; j < len; j++) {
                    pos[j] = s + j + 40;
                }
                b.append(new int[len], pos, null, 0, len);
                blocks.add(b);
            }
            // spans: first block at stored positions, second re-indexed, third partly at a fixed position, rest stored
            List<KvSpan> spans = new ArrayList<>();
            spans.add(KvSpan.stored(blocks.get(0)));
            spans.add(new KvSpan(blocks.get(1), 2, block, KvSpan.Positions.CONTIGUOUS, 3));
            spans.add(new KvSpan(blocks.get(2), 0, block * 5 / 8, KvSpan.Positions.FIXED, fixedBase));
            for (int i = 3; i < blocks.size(); i++) {
                spans.add(KvSpan.stored(blocks.get(i)));
            }
            List<List<KvSpan>> perHead = new ArrayList<>();
            for (int g = 0; g < kvHeads; g++) {
                perHead.add(g % 2 == 0 ? spans : spans.subList(1, spans.size())); // heads may see different memory
            }
            List<Float> massOut = masses.get(bi);
            AttentionPlan plan = new AttentionPlan(perHead, qPos).withObserver((layer, g, span, m, off) -> {
                for (int j = 0; j < span.length(); j++) {
                    massOut.add(m[off + j]);
                }
            });
            Buf o = be.allocate(n * heads * hd);
            be.attention(0, load(be, q), n, qSeq, plan, rope, shape, (float) (1 / Math.sqrt(hd)), o);
            outs[bi] = new float[n * heads * hd];
            be.read(o, 0, outs[bi++], 0, outs[0].length);
        }
        assertClose("attention", outs[0], outs[1], 1e-5);
        float[] m0 = new float[masses.get(0).size()],
                m1 = new float[masses.get(1).size()];
        for (int i = 0; i < m0.length; i++) {
            m0[i] = masses.get(0).get(i);
            m1[i] = masses.get(1).get(i);
        }
        assertThat(m0.length).isEqualTo(m1.length).isPositive();
        assertClose("attention mass", m0, m1, 1e-5);
        double sum = 0;
        for (float x : m1) {
            sum += x;
        }
        assertThat(sum)
                .as("each (query, head) distributes mass 1")
                .isCloseTo(n * heads, org.assertj.core.data.Offset.offset(1e-3));
    }
}
