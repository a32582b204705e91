package io.engram.engine.model.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.tensor.DType;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Our engine against llama.cpp (b4916 through de.kherud:llama, an independent implementation) on the same GGUF files:
 * tiny random Llama (GQA, interleaved RoPE) and Qwen2 (biases, rotate_half RoPE) models in F32, F16, Q8_0 and Q4_0.
 * Checks: the 32-token greedy continuation is identical, and at every step the top-5 tokens' probabilities agree.
 *
 * <p>Tolerances (absolute, on probabilities): F32 1e-4 (seen: 5e-7); F16 2e-3 (ggml rounds the activations to F16 for
 * F16 weights, we keep them F32; seen: 6e-4). Q8_0/Q4_0: ggml also quantizes the activations to 8 bits inside its dot products for quantized weights, we
 * do not, so probabilities are compared at 0.05 and greedy agreement is required only while the reference's top-1
 * margin exceeds 0.1 in probability.
 */
class EngineLlamaCppParityTest {
    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
        "LLAMA_SMALL, F32",
        "LLAMA_SMALL, F16",
        "LLAMA_SMALL, Q8_0",
        "LLAMA_SMALL, Q4_0",
        "QWEN2_SMALL, F32",
        "QWEN2_SMALL, Q8_0"
    })
    void greedyAndTopProbabilitiesMatchLlamaCpp(String specName, DType type) throws Exception {
        TinyGgufModels.Spec spec = (TinyGgufModels.Spec)
                TinyGgufModels.Spec.class.getField(specName).get(null);
        Path gguf = TinyGgufModels.write(spec, type, tmp);
        boolean quantized = type.isQuantized();
        double probTol = quantized ? 0.05 : type == DType.F32 ? 1e-4 : 2e-3;
        SplittableRandom r = new SplittableRandom(7);
        int[] prompt = new int[12];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 3 + r.nextInt(250);
        }
        int steps = 32;
        List<LlamaCppReference.Step> ref;
        try (LlamaCppReference cpp = LlamaCppReference.open(gguf, 256)) {
            ref = cpp.greedyWithLogits(prompt, steps);
        }
        try (Model m = Model.open(gguf);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 8, 2, false));
            KvCache cache = t.newCache();
            float[][] last = new float[1][];
            t.forward(cache, prompt, null, new FullAttention(), Transformer.Logits.LAST, (s, l) -> last[0] = l.clone());
            double worst = 0;
            for (int i = 0; i < steps; i++) {
                LlamaCppReference.Step step = ref.get(i);
                LlamaCppReference.TopK theirs = LlamaCppReference.topK(step.logits(), 5);
                LlamaCppReference.TopK ours = LlamaCppReference.topK(last[0], 5);
                for (int k = 0; k < 5; k++) {
                    double p = probabilityOf(last[0], theirs.ids()[k]);
                    worst = Math.max(worst, Math.abs(p - theirs.probs()[k]));
                    assertThat(p)
                            .as("step %d: p(token %d) ours vs llama.cpp", i, theirs.ids()[k])
                            .isCloseTo(theirs.probs()[k], org.assertj.core.data.Offset.offset(probTol));
                }
                boolean clearMargin = theirs.probs()[0] - theirs.probs()[1] > 0.1;
                if (!quantized || clearMargin) {
                    assertThat(ours.ids()[0]).as("greedy token at step %d", i).isEqualTo(step.token());
                } else if (ours.ids()[0] != step.token()) {
                    break; // a near-tie under activation quantization: the sequences may part here; stop comparing
                }
                int next = step.token();
                t.forward(
                        cache,
                        new int[] {next},
                        null,
                        new FullAttention(),
                        Transformer.Logits.LAST,
                        (s, l) -> last[0] = l.clone());
            }
            System.out.printf("%s %s: worst |dp| over top-5 = %.2e (tolerance %.0e)%n", specName, type, worst, probTol);
        }
    }

    static double probabilityOf(float[] logits, int id) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double z = 0;
        for (float l : logits) {
            z += Math.exp(l - max);
        }
        return Math.exp(logits[id] - max) / z;
    }
}
