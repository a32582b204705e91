package io.engram.engine.generate;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GeneratorTest {
    @TempDir
    Path tmp;

    /** Maps each token to a fixed 2-char text, so stop strings can be checked exactly. */
    static Detokenizer fixedText() {
        return t -> "%02x".formatted(t & 0xFF);
    }

    @Test
    void greedyGenerationMatchesStepwiseArgmaxStreamsTokensAndStopsAtTheLimit() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 8, 2, false));
            int[] prompt = {5, 9, 100, 42, 7};
            List<Integer> streamed = new ArrayList<>();
            Generation g = new Generator(t)
                    .generate(
                            t.newCache(),
                            prompt,
                            null,
                            new FullAttention(),
                            SamplingOptions.greedy(12).withStopAtEos(false),
                            fixedText(),
                            (tok, text, lp) -> streamed.add(tok));
            assertThat(g.stopReason()).isEqualTo(Generation.StopReason.MAX_TOKENS);
            assertThat(g.tokens()).hasSize(12);
            assertThat(streamed)
                    .containsExactly(java.util.Arrays.stream(g.tokens()).boxed().toArray(Integer[]::new));
            // the same tokens by hand, recomputing the whole sequence in a fresh cache each step
            List<Integer> seq = new ArrayList<>();
            for (int p : prompt) {
                seq.add(p);
            }
            for (int i = 0; i < 12; i++) {
                KvCache c = t.newCache();
                float[][] last = new float[1][];
                t.forward(
                        c,
                        seq.stream().mapToInt(Integer::intValue).toArray(),
                        null,
                        new FullAttention(),
                        Transformer.Logits.LAST,
                        (s, l) -> last[0] = l.clone());
                int next = Sampler.argmax(last[0]);
                assertThat(g.tokens()[i]).as("token %d", i).isEqualTo(next);
                double max = Double.NEGATIVE_INFINITY, z = 0;
                for (float l : last[0]) {
                    max = Math.max(max, l);
                }
                for (float l : last[0]) {
                    z += Math.exp(l - max);
                }
                assertThat(g.logProbs()[i])
                        .isCloseTo(last[0][next] - max - Math.log(z), org.assertj.core.data.Offset.offset(1e-4));
                seq.add(next);
            }
        }
    }

    @Test
    void stopStringCutsTheTextAndStopTokenEndsWithoutEmittingIt() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.QWEN2, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(1, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(128, 512, 1, false));
            int[] prompt = {11, 12, 13};
            Generation free = new Generator(t)
                    .generate(
                            t.newCache(),
                            prompt,
                            null,
                            new FullAttention(),
                            SamplingOptions.greedy(10).withStopAtEos(false),
                            fixedText(),
                            TokenListener.NONE);
            String stop = free.text().substring(5, 9); // spans a token boundary
            Generation cut = new Generator(t)
                    .generate(
                            t.newCache(),
                            prompt,
                            null,
                            new FullAttention(),
                            SamplingOptions.greedy(10).withStopAtEos(false).withStops(List.of(), List.of(stop)),
                            fixedText(),
                            TokenListener.NONE);
            assertThat(cut.stopReason()).isEqualTo(Generation.StopReason.STOP_STRING);
            assertThat(cut.text())
                    .isEqualTo(free.text().substring(0, free.text().indexOf(stop)));
            int third = free.tokens()[2];
            Generation st = new Generator(t)
                    .generate(
                            t.newCache(),
                            prompt,
                            null,
                            new FullAttention(),
                            SamplingOptions.greedy(10).withStopAtEos(false).withStops(List.of(third), List.of()),
                            fixedText(),
                            TokenListener.NONE);
            assertThat(st.stopReason()).isEqualTo(Generation.StopReason.STOP_TOKEN);
            assertThat(st.tokens())
                    .containsExactly(java.util.Arrays.copyOf(
                            free.tokens(), free.tokens()[0] == third ? 0 : free.tokens()[1] == third ? 1 : 2));
        }
    }

    @Test
    void aBatchOfGenerationsEqualsEachRunAloneBitForBit() {
        Path dir = TinyModels.write(tmp.resolve("b"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(8, 6, 2, false));
            int[][] prompts = {{5, 9, 100, 42, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {300}, {17, 18, 19, 20}};
            SamplingOptions[] opts = {
                SamplingOptions.greedy(9).withStopAtEos(false),
                SamplingOptions.greedy(20).withStopAtEos(false).withSampling(1.3, 40, 0.9, 11),
                SamplingOptions.greedy(5).withStopAtEos(false),
            };
            Generator gen = new Generator(t);
            List<Generation> alone = new ArrayList<>();
            for (int i = 0; i < prompts.length; i++) {
                alone.add(gen.generate(
                        t.newCache(), prompts[i], null, new FullAttention(), opts[i], fixedText(), TokenListener.NONE));
            }
            List<Generator.Request> reqs = new ArrayList<>();
            List<KvCache> caches = new ArrayList<>();
            for (int i = 0; i < prompts.length; i++) {
                KvCache c = t.newCache();
                caches.add(c);
                reqs.add(new Generator.Request(
                        c, prompts[i], null, new FullAttention(), opts[i], fixedText(), TokenListener.NONE));
            }
            List<Generation> together = gen.generateBatch(reqs);
            for (int i = 0; i < prompts.length; i++) {
                assertThat(together.get(i).tokens())
                        .as("request %d tokens", i)
                        .containsExactly(alone.get(i).tokens());
                assertThat(together.get(i).logProbs())
                        .as("request %d log-probs, bit for bit", i)
                        .containsExactly(alone.get(i).logProbs());
                assertThat(together.get(i).text()).isEqualTo(alone.get(i).text());
                assertThat(caches.get(i).nextSeq())
                        .isEqualTo(prompts[i].length + together.get(i).tokens().length - 1);
            }
        }
    }
}
