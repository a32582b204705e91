package io.engram.engine.backend.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The CPU backend's Q8_0 and Q4_0 matmul (decode kernel for one or two tokens, dequantized groups beyond) against a
 * double-precision product of the weights as {@link Quant#decode} reads them from the file: rows that are not a whole
 * group, several 32-column blocks, one and two threads.
 */
class QuantPanelsTest {

    @ParameterizedTest
    @CsvSource({"Q4_0, 1, 1", "Q4_0, 2, 2", "Q4_0, 5, 1", "Q4_0, 9, 2", "Q8_0, 1, 1", "Q8_0, 2, 2", "Q8_0, 5, 2"})
    void matchesADoublePrecisionProductOfTheStoredWeights(DType type, int tokens, int threads) {
        int rows = 200;
        int cols = 160;
        SplittableRandom r = new SplittableRandom(11);
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        float[] xs = new float[tokens * cols];
        for (int i = 0; i < xs.length; i++) {
            xs[i] = (float) r.nextGaussian();
        }
        byte[] bytes = io.engram.engine.model.gguf.GgufQuantizers.encode(type, v);
        try (Arena arena = Arena.ofConfined();
                CpuBackend backend = new CpuBackend(threads, false)) {
            MemorySegment seg = arena.allocate(bytes.length, 64);
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, seg, 0, bytes.length);
            float[] w = new float[rows * cols];
            Quant.decode(type, seg, 0, w, 0, w.length);
            var weight = backend.bind(new WeightTensor("w", type, new long[] {rows, cols}, seg));
            Buf x = backend.allocate(xs.length);
            backend.write(x, 0, xs, 0, xs.length);
            Buf out = backend.allocate(tokens * rows);
            backend.matmul(weight, x, tokens, out);
            float[] got = new float[tokens * rows];
            backend.read(out, 0, got, 0, got.length);
            for (int t = 0; t < tokens; t++) {
                for (int row = 0; row < rows; row++) {
                    double want = 0;
                    double mag = 0;
                    for (int k = 0; k < cols; k++) {
                        want += (double) w[row * cols + k] * xs[t * cols + k];
                        mag += Math.abs((double) w[row * cols + k] * xs[t * cols + k]);
                    }
                    assertThat((double) got[t * rows + row])
                            .as("token %d row %d", t, row)
                            .isCloseTo(want, org.assertj.core.data.Offset.offset(1e-5 * mag + 1e-6));
                }
            }
        }
    }
}
