package io.engram.engine.backend.cpu;

import io.engram.engine.backend.BoundWeight;
import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.WeightTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
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
 * JMH benchmarks of the CPU backend's matmul: one (rows x cols) matrix in each storage type, times one token (a decode
 * step) and a chunk of tokens (prefill). Reports microseconds per call; multiply-adds per second are
 * {@code rows * cols * tokens / time}. Run on a quiet machine:
 *
 * <pre>
 * mvn -B -q -pl gpu-engine -am test-compile -Dengram.skip-nvcc=true
 * mvn -B -q -pl gpu-engine exec:exec -Dexec.executable=java -Dexec.classpathScope=test \
 *     -Dexec.args="-cp %classpath org.openjdk.jmh.Main KernelBench -p threads=1"
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class KernelBench {
    @Param({"F32", "BF16", "Q8_0", "Q4_0"})
    public DType type;

    @Param({"1024"})
    public int rows;

    @Param({"1024"})
    public int cols;

    @Param({"1", "2"})
    public int threads;

    /** Tokens of the prefill call. */
    @Param({"64"})
    public int chunk;

    private Arena arena;
    private CpuBackend backend;
    private BoundWeight weight;
    private Buf x;
    private Buf out;

    @Setup
    public void setUp() {
        SplittableRandom r = new SplittableRandom(7);
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        arena = Arena.ofShared();
        byte[] bytes = io.engram.engine.model.gguf.GgufQuantizers.encode(type, v);
        MemorySegment seg = arena.allocate(bytes.length, 64);
        MemorySegment.copy(MemorySegment.ofArray(bytes), 0, seg, 0, bytes.length);
        backend = new CpuBackend(threads, false);
        weight = backend.bind(new WeightTensor("w", type, new long[] {rows, cols}, seg));
        float[] xs = new float[chunk * cols];
        for (int i = 0; i < xs.length; i++) {
            xs[i] = (float) r.nextGaussian();
        }
        x = backend.allocate(xs.length);
        backend.write(x, 0, xs, 0, xs.length);
        out = backend.allocate(chunk * rows);
    }

    @TearDown
    public void tearDown() {
        backend.close();
        arena.close();
    }

    @Benchmark
    public Buf decode() {
        backend.matmul(weight, x, 1, out);
        return out;
    }

    @Benchmark
    public Buf prefill() {
        backend.matmul(weight, x, chunk, out);
        return out;
    }
}
