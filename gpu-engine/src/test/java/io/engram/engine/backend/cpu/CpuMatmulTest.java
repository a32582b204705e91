package io.engram.engine.backend.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.backend.BoundWeight;
import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The CPU backend's promise that a token's matmul result does not depend on how many tokens share the call (decode
 * reads BF16 rows in place, prefill decodes them first) nor on the thread count, and its worker team's contract.
 */
class CpuMatmulTest {

    static float[] matmul(CpuBackend be, BoundWeight w, float[] x, int n, int rows) {
        Buf in = be.allocate(x.length);
        be.write(in, 0, x, 0, x.length);
        Buf out = be.allocate(n * rows);
        be.matmul(w, in, n, out);
        float[] o = new float[n * rows];
        be.read(out, 0, o, 0, o.length);
        return o;
    }

    @ParameterizedTest(name = "{0} {1}x{2}, {3} threads")
    @CsvSource({
        "BF16, 67, 100, 1",
        "F32, 64, 256, 2",
        "BF16, 4096, 256, 2",
        "F16, 35, 15, 2",
        "Q8_0, 70, 64, 2",
        "F32, 131, 40, 1",
        "F32, 300, 33, 2",
        "BF16, 150, 20, 1",
        "BF16, 520, 24, 2"
    })
    void aTokensResultDoesNotDependOnTheTokensBesideItNorOnThreads(DType type, int rows, int cols, int threads) {
        SplittableRandom r = new SplittableRandom(rows + 7L * cols);
        try (Arena arena = Arena.ofShared();
                CpuBackend be = new CpuBackend(threads, false);
                CpuBackend one = new CpuBackend(1, false)) {
            float[] values = new float[rows * cols];
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) r.nextGaussian();
            }
            MemorySegment seg = arena.allocate(type.bytesFor((long) rows * cols), 8);
            for (int i = 0; i < values.length; i++) {
                switch (type) {
                    case F32 -> seg.set(Quant.F32_LE, 4L * i, values[i]);
                    case F16 -> seg.set(Quant.I16_LE, 2L * i, Float.floatToFloat16(values[i]));
                    case BF16 -> seg.set(Quant.I16_LE, 2L * i, Quant.floatToBf16(values[i]));
                    default -> {}
                }
            }
            if (type == DType.Q8_0) {
                for (int row = 0; row < rows; row++) {
                    Quant.encodeQ8_0(values, row * cols, cols, seg, row * type.bytesFor(cols));
                }
            }
            WeightTensor t = new WeightTensor("w", type, new long[] {rows, cols}, seg);
            int n = 9; // two 4-token tiles and a single token; one token alone takes the decode path
            float[] x = new float[n * cols];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian();
            }
            float[] batch = matmul(be, be.bind(t), x, n, rows);
            for (int i = 0; i < n; i++) {
                float[] xi = java.util.Arrays.copyOfRange(x, i * cols, (i + 1) * cols);
                float[] single = matmul(be, be.bind(t), xi, 1, rows);
                float[] singleOneThread = matmul(one, one.bind(t), xi, 1, rows);
                for (int j = 0; j < rows; j++) {
                    if (type == DType.Q8_0) { // decode reads Q8_0 rows in place, in another order: close, not equal
                        assertThat(single[j])
                                .as("token %d row %d", i, j)
                                .isCloseTo(batch[i * rows + j], org.assertj.core.data.Offset.offset(1e-4f));
                        continue;
                    }
                    assertThat(Float.floatToIntBits(single[j]))
                            .as("token %d row %d", i, j)
                            .isEqualTo(Float.floatToIntBits(batch[i * rows + j]));
                    assertThat(Float.floatToIntBits(singleOneThread[j]))
                            .as("1 thread, token %d row %d", i, j)
                            .isEqualTo(Float.floatToIntBits(single[j]));
                }
            }
        }
    }

    @Test
    void workerTeamRunsEveryIndexOnceOpAfterOp() {
        try (WorkerTeam team = new WorkerTeam(3)) {
            SplittableRandom r = new SplittableRandom(3);
            for (int op = 0; op < 4_000; op++) {
                int count = 1 + r.nextInt(100);
                AtomicIntegerArray hits = new AtomicIntegerArray(count);
                team.run(count, 1 + r.nextInt(16), (from, to) -> {
                    for (int i = from; i < to; i++) {
                        hits.incrementAndGet(i);
                    }
                });
                for (int i = 0; i < count; i++) {
                    assertThat(hits.get(i))
                            .as("op %d index %d of %d", op, i, count)
                            .isEqualTo(1);
                }
                if (op % 1_000 == 0) {
                    Thread.sleep(1); // let the workers park now and then: the next op must wake them
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Test
    void workerTeamRethrowsAFailureAndKeepsWorking() {
        try (WorkerTeam team = new WorkerTeam(2)) {
            assertThatThrownBy(() -> team.run(64, 8, (from, to) -> {
                        if (from >= 32) {
                            throw new IllegalStateException("range " + from);
                        }
                    }))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageStartingWith("range ");
            AtomicIntegerArray hits = new AtomicIntegerArray(64);
            team.run(64, 8, (from, to) -> {
                for (int i = from; i < to; i++) {
                    hits.incrementAndGet(i);
                }
            });
            for (int i = 0; i < 64; i++) {
                assertThat(hits.get(i)).isEqualTo(1);
            }
        }
    }
}
