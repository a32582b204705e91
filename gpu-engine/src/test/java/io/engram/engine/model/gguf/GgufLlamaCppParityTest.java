package io.engram.engine.model.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.RopeStyle;
import io.engram.engine.config.ModelConfig;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Our GGUF files and our reading of them against llama.cpp: the tiny random models load in llama.cpp with the
 * configuration {@link GgufModel} reads, and every storage type we decode ({@link Quant}) means to llama.cpp what it
 * means to us. For the latter, a model written in type T and the F32 model holding our decoding of that file's
 * weights must give llama.cpp nearly the same logits (the remaining difference is ggml quantizing activations for its
 * dot products), while a model holding the original floats differs by the weight quantization error, and a wrong
 * decoding differs wildly (the negative control).
 */
class GgufLlamaCppParityTest {
    private static final int POSITIONS = 48;
    /** Measured: mean |diff| <= 0.069 and max <= 0.39 for every case (logit RMS about 3); a layout error gives >= 2 and ~15. */
    private static final double MEAN_TOL = 0.1;

    private static final double MAX_TOL = 0.6;

    @TempDir
    Path tmp;

    /** BOS and then seeded random non-special ids. */
    static int[] tokens(long seed) {
        Random rnd = new Random(seed);
        int[] t = new int[POSITIONS];
        t[0] = 1;
        for (int i = 1; i < t.length; i++) {
            t[i] = 3 + rnd.nextInt(TinyGgufModels.VOCAB_SIZE - 3);
        }
        return t;
    }

    static float[][] logits(Path p, int[] tokens) {
        try (LlamaCppReference ref = LlamaCppReference.open(p, 64)) {
            return ref.logits(tokens);
        }
    }

    static double maxAbsDiff(float[][] a, float[][] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                m = Math.max(m, Math.abs(a[i][j] - b[i][j]));
            }
        }
        return m;
    }

    static double meanAbsDiff(float[][] a, float[][] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                m += Math.abs(a[i][j] - b[i][j]);
            }
        }
        return m / (a.length * (double) a[0].length);
    }

    /** Every tensor of {@code p}, decoded by {@link Quant}. */
    static Map<String, float[]> decoded(Path p) {
        Map<String, float[]> out = new LinkedHashMap<>();
        try (GgufFile f = GgufFile.open(p)) {
            for (WeightTensor t : f.tensors().values()) {
                float[] v = new float[Math.toIntExact(t.elementCount())];
                Quant.decode(t.dtype(), t.data(), 0, v, 0, v.length);
                out.put(t.name(), v);
            }
        }
        return out;
    }

    @Test
    void tinyModelsLoadInLlamaCppWithTheConfigWeRead() throws IOException {
        List<Path> files = new ArrayList<>();
        for (TinyGgufModels.Spec s : List.of(
                TinyGgufModels.Spec.LLAMA_SMALL, TinyGgufModels.Spec.LLAMA_KQUANT, TinyGgufModels.Spec.QWEN2_SMALL)) {
            files.add(TinyGgufModels.write(s, DType.F32, tmp));
        }
        Path stories = TinyGgufModels.storiesGguf("f32");
        if (Files.isRegularFile(stories)) {
            files.add(stories);
        }
        for (Path p : files) {
            try (GgufModel ours = GgufModel.open(p);
                    LlamaCppReference ref = LlamaCppReference.open(p, 64)) {
                ModelConfig c = ours.config();
                LlamaCppReference.Info info = ref.info();
                assertThat(info)
                        .as(p.getFileName().toString())
                        .isEqualTo(new LlamaCppReference.Info(
                                c.hiddenSize(),
                                c.layers(),
                                c.heads(),
                                c.kvHeads(),
                                c.maxPositions(),
                                c.vocabSize(),
                                c.ropeStyle() == RopeStyle.INTERLEAVED ? 0 : 2,
                                c.bosId(),
                                c.eosIds()[0]));
                assertThat(ref.metaString("general.name")).isEqualTo(c.name());
                assertThat(ref.metaString(c.architecture().ggufName() + ".feed_forward_length"))
                        .isEqualTo(Integer.toString(c.intermediateSize()));
            }
        }
    }

    @Test
    void variantsFromOneSeedShareTheConfigAndRunInLlamaCpp() throws IOException {
        Map<DType, Path> variants = TinyGgufModels.writeVariants(
                TinyGgufModels.Spec.LLAMA_SMALL, tmp, DType.F32, DType.F16, DType.Q8_0, DType.Q4_0);
        ModelConfig first = null;
        int[] greedyF32 = null;
        for (var e : variants.entrySet()) {
            try (GgufModel m = GgufModel.open(e.getValue());
                    LlamaCppReference ref = LlamaCppReference.open(e.getValue(), 64)) {
                assertThat(m.weights().layers()[1].wUp().dtype()).isEqualTo(e.getKey());
                assertThat(m.weights().layers()[1].ffnNorm().dtype()).isEqualTo(DType.F32);
                if (first == null) {
                    first = m.config();
                } else {
                    assertThat(m.config()).usingRecursiveComparison().isEqualTo(first);
                }
                List<LlamaCppReference.Step> steps = ref.greedyWithLogits(new int[] {1, 400, 300}, 20);
                int[] ids =
                        steps.stream().mapToInt(LlamaCppReference.Step::token).toArray();
                assertThat(ref.greedy(new int[] {1, 400, 300}, 20))
                        .as("deterministic")
                        .containsExactly(ids);
                LlamaCppReference.TopK top = LlamaCppReference.topK(steps.get(0).logits(), 5);
                assertThat(top.ids()[0]).isEqualTo(ids[0]);
                assertThat(top.probs()).isSortedAccordingTo((a, b) -> Double.compare(b, a));
                assertThat(top.probs()[0]).isBetween(0.0, 1.0);
                if (e.getKey() == DType.F32) {
                    greedyF32 = ids;
                } else if (e.getKey() == DType.F16) {
                    assertThat(ids).as("F16 greedy equals F32 greedy").containsExactly(greedyF32);
                }
            }
        }
    }

    static Stream<Arguments> storageTypes() {
        return Stream.of(
                Arguments.of(TinyGgufModels.Spec.LLAMA_SMALL, DType.F16),
                Arguments.of(TinyGgufModels.Spec.LLAMA_SMALL, DType.BF16),
                Arguments.of(TinyGgufModels.Spec.LLAMA_SMALL, DType.Q8_0),
                Arguments.of(TinyGgufModels.Spec.LLAMA_SMALL, DType.Q4_0),
                Arguments.of(TinyGgufModels.Spec.QWEN2_SMALL, DType.Q8_0),
                Arguments.of(TinyGgufModels.Spec.LLAMA_KQUANT, DType.Q4_K),
                Arguments.of(TinyGgufModels.Spec.LLAMA_KQUANT, DType.Q6_K));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("storageTypes")
    void ourDecodingOfEachStorageTypeIsGgmls(TinyGgufModels.Spec s, DType type) throws IOException {
        Map<String, float[]> original = TinyGgufModels.randomWeights(s);
        Path stored = TinyGgufModels.write(s, original, type, tmp.resolve("stored.gguf"));
        Path ours = TinyGgufModels.write(s, decoded(stored), DType.F32, tmp.resolve("decoded.gguf"));
        Path exact = TinyGgufModels.write(s, original, DType.F32, tmp.resolve("original.gguf"));
        int[] tokens = tokens(s.seed());
        float[][] ls = logits(stored, tokens);
        float[][] lo = logits(ours, tokens);
        float[][] le = logits(exact, tokens);
        double mean = meanAbsDiff(ls, lo);
        double max = maxAbsDiff(ls, lo);
        double meanOriginal = meanAbsDiff(ls, le);
        System.out.printf(
                "%s %s: llama.cpp logits, stored vs our decoding: mean %.4f max %.4f (%.0f%% / %.0f%% of tolerance);"
                        + " stored vs original floats: mean %.4f%n",
                s.name(), type, mean, max, 100 * mean / MEAN_TOL, 100 * max / MAX_TOL, meanOriginal);
        assertThat(mean)
                .as("%s %s mean |logit diff|, stored vs our decoding", s.name(), type)
                .isLessThanOrEqualTo(MEAN_TOL);
        assertThat(max)
                .as("%s %s max |logit diff|, stored vs our decoding", s.name(), type)
                .isLessThanOrEqualTo(MAX_TOL);
        if (type == DType.Q4_0 || type == DType.Q4_K) {
            // 4-bit weight error dominates: our decoding must be far closer to what ggml computes than the originals
            // are
            assertThat(mean)
                    .as("%s %s: decoding explains the quantized model", s.name(), type)
                    .isLessThan(0.2 * meanOriginal);
        }
    }

    @Test
    void aWrongDecodingIsCaught() throws IOException {
        TinyGgufModels.Spec s = TinyGgufModels.Spec.LLAMA_KQUANT;
        Path stored = TinyGgufModels.write(s, TinyGgufModels.randomWeights(s), DType.Q4_K, tmp.resolve("stored.gguf"));
        Map<String, float[]> wrong = decoded(stored);
        // the classic Q4_K slip: low and high nibbles of each 64-value chunk swapped, in one matrix per layer
        for (var e : wrong.entrySet()) {
            if (e.getKey().endsWith("ffn_up.weight")) {
                float[] v = e.getValue();
                for (int i = 0; i < v.length; i += 64) {
                    for (int l = 0; l < 32; l++) {
                        float t = v[i + l];
                        v[i + l] = v[i + 32 + l];
                        v[i + 32 + l] = t;
                    }
                }
            }
        }
        Path bad = TinyGgufModels.write(s, wrong, DType.F32, tmp.resolve("wrong.gguf"));
        int[] tokens = tokens(s.seed());
        assertThat(meanAbsDiff(logits(stored, tokens), logits(bad, tokens))).isGreaterThan(10 * MEAN_TOL);
    }
}
