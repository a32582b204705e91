package io.engram.engine.backend;

import static io.engram.engine.backend.BackendParityTest.random;
import static io.engram.engine.backend.BackendParityTest.tensor;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.engram.engine.backend.cuda.CudaBackend;
import io.engram.engine.backend.cuda.CudaDevice;
import io.engram.engine.backend.reference.ReferenceBackend;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.WeightTensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every op of the CUDA backend against the reference backend (double accumulation) on seeded random inputs: odd
 * shapes, each weight type, both matmul paths, GQA ratios, every span kind and per-head spans in attention. Skipped,
 * with the reason, where no CUDA device, driver or kernels are present (CI).
 *
 * <p>Tolerances, relative to the largest magnitude of the expected result: ops on F32 data 1e-5 (float accumulation in
 * another order); matmul with BF16 weights on the decode path (F32 activations) 1e-5; any matmul whose weights were
 * rounded to BF16 on upload (F32/F16/Q8_0 files) or whose activations were rounded to BF16 for the tensor cores (more
 * than {@code CudaBackend.GEMV_MAX_TOKENS} tokens) 1.5e-2: BF16 keeps 8 significant bits (relative rounding 2^-9 per
 * operand), and a dot product of K terms with random signs keeps that relative error within a few times 2^-9.
 */
class CudaParityTest {
    static final double F32_TOL = 1e-5;
    static final double BF16_TOL = 1.5e-2;
    static CudaBackend cuda;
    final ReferenceBackend ref = new ReferenceBackend();

    static Optional<String> unavailable;

    @BeforeAll
    static void open() {
        unavailable = CudaDevice.unavailableReason();
        cuda = unavailable.isEmpty() ? CudaBackend.open(0, 0) : null;
    }

    @BeforeEach
    void requireCuda() {
        requireCuda(unavailable);
    }

    /** Skips the calling test, saying why, where CUDA cannot be used. */
    static void requireCuda(Optional<String> unavailable) {
        assumeTrue(
                unavailable.isEmpty(), () -> "no CUDA: " + unavailable.orElse("") + "; skipping the CUDA parity check");
    }

    @AfterAll
    static void close() {
        if (cuda != null) {
            cuda.close();
        }
    }

    static float[] run(Backend be, Function<Backend, Buf> op, int len) {
        float[] out = new float[len];
        be.read(op.apply(be), 0, out, 0, len);
        return out;
    }

    static Buf load(Backend be, float[] a) {
        Buf b = be.allocate(a.length);
        be.write(b, 0, a, 0, a.length);
        return b;
    }

    /** Asserts and reports {@code max|a-b| / max|b|}. */
    static double check(String what, float[] actual, float[] expected, double tol) {
        double scale = 1e-6;
        for (float x : expected) {
            scale = Math.max(scale, Math.abs(x));
        }
        int worst = 0;
        double d = 0;
        for (int i = 0; i < actual.length; i++) {
            double e = Math.abs((double) actual[i] - expected[i]);
            if (!(e <= d)) { // NaN counts as worst
                d = Double.isNaN(e) ? Double.POSITIVE_INFINITY : e;
                worst = i;
            }
        }
        System.out.printf("cuda parity %-55s max rel err %.2e (tolerance %.1e)%n", what, d / scale, tol);
        assertThat(d / scale)
                .as("%s on cuda: worst index %d cuda %s expected %s", what, worst, actual[worst], expected[worst])
                .isLessThanOrEqualTo(tol);
        return d / scale;
    }

    @ParameterizedTest(name = "matmul {0} {1}x{2}, n={3}")
    @CsvSource({
        "BF16, 65, 128, 1",
        "BF16, 37, 72, 5",
        "BF16, 33, 100, 8", // decode path: exact weights, F32 activations
        "BF16, 130, 96, 9",
        "BF16, 200, 520, 70",
        "BF16, 64, 64, 64", // tensor cores, tile edges
        "F32, 300, 1024, 1",
        "F32, 131, 96, 37",
        "F16, 33, 64, 3",
        "Q8_0, 50, 96, 4",
        "Q8_0, 96, 256, 130"
    })
    void matmul(DType t, int rows, int cols, int n) {
        SplittableRandom r = new SplittableRandom(rows * 31L + cols + n);
        WeightTensor w = tensor("w", t, rows, cols, random(r, rows * cols));
        float[] x = random(r, n * cols);
        Function<Backend, Buf> op = be -> {
            Buf o = be.allocate(n * rows);
            be.matmul(be.bind(w), load(be, x), n, o);
            return o;
        };
        boolean exact = t == DType.BF16 && n <= 8;
        check(
                "matmul %s %dx%d n=%d".formatted(t, rows, cols, n),
                run(cuda, op, n * rows),
                run(ref, op, n * rows),
                exact ? F32_TOL : BF16_TOL);
    }

    @ParameterizedTest(name = "elementwise {0}")
    @CsvSource({"F32", "BF16"})
    void elementwise(DType t) {
        SplittableRandom r = new SplittableRandom(11);
        int dim = 72, n = 3;
        WeightTensor gamma = tensor("g", t, 1, dim, random(r, dim));
        WeightTensor emb = tensor("e", DType.BF16, 10, dim, random(r, 10 * dim));
        float[] x = random(r, n * dim);
        float[] y = random(r, n * dim);
        int[] ids = {3, 9, 0};
        Function<Backend, Buf> norm = be -> {
            Buf o = be.allocate(n * dim);
            be.rmsNorm(load(be, x), be.bind(gamma), 1e-5f, n, dim, o);
            return o;
        };
        check("rms_norm " + t, run(cuda, norm, n * dim), run(ref, norm, n * dim), F32_TOL);
        Function<Backend, Buf> inPlace = be -> {
            Buf o = load(be, x);
            be.rmsNorm(o, be.bind(gamma), 1e-5f, n, dim, o);
            return o;
        };
        check("rms_norm in place " + t, run(cuda, inPlace, n * dim), run(ref, inPlace, n * dim), F32_TOL);
        Function<Backend, Buf> rows = be -> {
            Buf o = be.allocate(n * dim);
            be.getRows(be.bind(emb), ids, o);
            return o;
        };
        check("get_rows BF16", run(cuda, rows, n * dim), run(ref, rows, n * dim), 0);
        Function<Backend, Buf> sw = be -> {
            Buf g = load(be, x);
            be.swiglu(g, load(be, y), n * dim, g);
            return g;
        };
        check("swiglu (in place)", run(cuda, sw, n * dim), run(ref, sw, n * dim), F32_TOL);
        Function<Backend, Buf> bias = be -> {
            Buf o = load(be, x);
            be.addBias(o, be.bind(gamma), n);
            return o;
        };
        check("add_bias " + t, run(cuda, bias, n * dim), run(ref, bias, n * dim), F32_TOL);
        Function<Backend, Buf> add = be -> {
            Buf o = load(be, x);
            be.add(o, load(be, y), n * dim);
            return o;
        };
        check("add", run(cuda, add, n * dim), run(ref, add, n * dim), F32_TOL);
        Function<Backend, Buf> copy = be -> {
            Buf o = load(be, y);
            be.copyRows(load(be, x), 1, o, 0, 2, dim);
            return o;
        };
        check("copy_rows", run(cuda, copy, n * dim), run(ref, copy, n * dim), 0);
    }

    @ParameterizedTest(name = "attention heads {0}/{1} hd {2} n={3} {4}, {5} past tokens, block {6}")
    @CsvSource({
        "4, 4, 16, 5, HALF, 21, 8",
        "8, 2, 8, 7, INTERLEAVED, 21, 8",
        "6, 3, 32, 1, HALF, 21, 8",
        "4, 1, 64, 9, HALF, 21, 8",
        "8, 2, 64, 1, HALF, 5000, 128", // decode over many blocks: split over the device, uncached RoPE positions
        "32, 8, 128, 1, HALF, 3000, 64",
        "14, 2, 64, 3, HALF, 700, 32",
        "16, 1, 128, 1, INTERLEAVED, 900, 128",
        "4, 2, 16, 80, HALF, 300, 16" // a prefill chunk
    })
    void attention(int heads, int kvHeads, int hd, int n, RopeStyle style, int past, int blockSize) {
        SplittableRandom r = new SplittableRandom(heads * 100L + hd + past);
        Backend.AttentionShape shape = new Backend.AttentionShape(heads, kvHeads, hd);
        int kvDim = kvHeads * hd;
        double[] inv = new double[hd / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = Math.pow(10000, -2.0 * i / hd);
        }
        RopeTable rope = new RopeTable(style, hd, inv, 1024); // positions above 1024 take the uncached path
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
        for (Backend be : List.<Backend>of(cuda, ref)) {
            List<KvBlock> blocks = new ArrayList<>();
            for (int s = 0; s < total; s += blockSize) {
                int len = Math.min(blockSize, total - s);
                Buf kb = be.allocateKv(blockSize * kvDim), vb = be.allocateKv(blockSize * kvDim);
                be.write(kb, 0, k, s * kvDim, len * kvDim);
                be.write(vb, 0, v, s * kvDim, len * kvDim);
                KvBlock b = new KvBlock(s / blockSize, s, blockSize, new Buf[] {kb}, new Buf[] {vb});
                int[] pos = new int[len];
                for (int j = 0; j < len; j++) {
                    pos[j] = s + j + 40 + (s + j >= 3 && s + j < 5 ? 7 : 0); // a break in stored positions
                }
                b.append(new int[len], pos, null, 0, len);
                blocks.add(b);
            }
            // stored, re-indexed, fixed-position and partial spans; odd KV heads see less (per-head memory)
            List<KvSpan> spans = new ArrayList<>();
            spans.add(KvSpan.stored(blocks.get(0)));
            spans.add(new KvSpan(blocks.get(1), 2, blockSize, KvSpan.Positions.CONTIGUOUS, 3));
            spans.add(new KvSpan(
                    blocks.get(2), 0, Math.min(blockSize, blocks.get(2).length()), KvSpan.Positions.FIXED, 100));
            for (int i = 3; i < blocks.size(); i++) {
                spans.add(KvSpan.stored(blocks.get(i)));
            }
            List<List<KvSpan>> perHead = new ArrayList<>();
            for (int g = 0; g < kvHeads; g++) {
                perHead.add(g % 2 == 0 ? spans : spans.subList(1, spans.size()));
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
        String what = "attention %d/%d hd%d n=%d %s past %d".formatted(heads, kvHeads, hd, n, style, past);
        check(what, outs[0], outs[1], F32_TOL);
        float[] m0 = toArray(masses.get(0));
        float[] m1 = toArray(masses.get(1));
        assertThat(m0).hasSameSizeAs(m1);
        check(what + " mass", m0, m1, F32_TOL);
    }

    static float[] toArray(List<Float> l) {
        float[] a = new float[l.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = l.get(i);
        }
        return a;
    }
}
