package io.engram.engine.backend.cpu;

import io.engram.engine.backend.Backend;
import io.engram.engine.backend.RopeStyle;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.tensor.Buf;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * JMH benchmark of the CPU backend's attention op: {@code queries} new tokens (1: a decode step; 64: a prefill chunk)
 * over {@code keys} stored keys in blocks of 128 at their stored positions, engram-tiny's shape by default (4 query
 * heads over 2 KV heads of 64 dimensions). Reports microseconds per call. Run on a quiet machine:
 *
 * <pre>
 * mvn -B -q -pl gpu-engine exec:exec -Dexec.executable=java -Dexec.classpathScope=test \
 *     -Dexec.args="-cp %classpath org.openjdk.jmh.Main AttentionBench -p threads=1"
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 2,
        jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class AttentionBench {
    private static final int BLOCK = 128;

    @Param({"512", "4096"})
    public int keys;

    @Param({"1", "64"})
    public int queries;

    @Param({"4"})
    public int heads;

    @Param({"2"})
    public int kvHeads;

    @Param({"64"})
    public int headDim;

    @Param({"1"})
    public int threads;

    private CpuBackend backend;
    private Buf q;
    private Buf out;
    private long[] qSeq;
    private AttentionPlan plan;
    private RopeTable rope;
    private Backend.AttentionShape shape;

    @Setup
    public void setUp() {
        SplittableRandom r = new SplittableRandom(11);
        backend = new CpuBackend(threads, false);
        shape = new Backend.AttentionShape(heads, kvHeads, headDim);
        int kvDim = kvHeads * headDim;
        double[] inv = new double[headDim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = Math.pow(10000, -2.0 * i / headDim);
        }
        rope = new RopeTable(RopeStyle.HALF, headDim, inv, keys + queries);
        List<KvSpan> spans = new ArrayList<>();
        for (int s = 0; s < keys; s += BLOCK) {
            int len = Math.min(BLOCK, keys - s);
            Buf kb = backend.allocate(BLOCK * kvDim);
            Buf vb = backend.allocate(BLOCK * kvDim);
            backend.write(kb, 0, gaussian(r, len * kvDim), 0, len * kvDim);
            backend.write(vb, 0, gaussian(r, len * kvDim), 0, len * kvDim);
            KvBlock b = new KvBlock(s / BLOCK, s, BLOCK, new Buf[] {kb}, new Buf[] {vb});
            int[] pos = new int[len];
            for (int j = 0; j < len; j++) {
                pos[j] = s + j;
            }
            b.append(new int[len], pos, null, 0, len);
            spans.add(KvSpan.stored(b));
        }
        List<List<KvSpan>> perHead = new ArrayList<>();
        for (int g = 0; g < kvHeads; g++) {
            perHead.add(spans);
        }
        // the queries are the last tokens of the keys (as in a prefill chunk, or a decode step over its own key)
        qSeq = new long[queries];
        int[] qPos = new int[queries];
        for (int i = 0; i < queries; i++) {
            qSeq[i] = keys - queries + i;
            qPos[i] = keys - queries + i;
        }
        plan = new AttentionPlan(perHead, qPos);
        float[] qs = gaussian(r, queries * heads * headDim);
        q = backend.allocate(qs.length);
        backend.write(q, 0, qs, 0, qs.length);
        out = backend.allocate(qs.length);
    }

    private static float[] gaussian(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    @TearDown
    public void tearDown() {
        backend.close();
    }

    @Benchmark
    public Buf attention() {
        backend.attention(0, q, queries, qSeq, plan, rope, shape, (float) (1 / Math.sqrt(headDim)), out);
        return out;
    }
}
