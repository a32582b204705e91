package io.engram.engine.generate;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.SharedFiles;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.tokenizer.StreamingDecoder;
import io.engram.engine.tokenizer.Tokenizer;
import io.engram.engine.tokenizer.Tokenizers;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Text in, text out on the real stories260K: tokenizer, generation and streaming detokenizer together. */
class TextGenerationTest {

    @Test
    void greedyStoryFromBosReadsAsLlama2cDocuments() {
        Path dir = SharedFiles.require("models/stories260K-hf");
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Tokenizer tok = Tokenizers.fromHuggingFace(dir);
            Transformer t = new Transformer(
                    m.config(), m.weights(), b, EngineSettings.defaults().withThreads(2));
            int[] prompt = tok.encode("", true); // BOS only
            assertThat(prompt).containsExactly(1);
            StringBuilder streamed = new StringBuilder();
            StreamingDecoder dec = new StreamingDecoder(tok, true);
            Generation g = new Generator(t)
                    .generate(
                            t.newCache(),
                            prompt,
                            null,
                            new FullAttention(),
                            SamplingOptions.greedy(80).withStops(java.util.List.of(), java.util.List.of(" big, red")),
                            dec::accept,
                            (id, text, lp) -> streamed.append(text));
            assertThat(g.text())
                    .startsWith(
                            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a");
            assertThat(g.stopReason()).isEqualTo(Generation.StopReason.STOP_STRING);
            assertThat(g.text()).endsWith("she saw a");
            assertThat(streamed.toString()).isEqualTo(g.text());
        }
    }
}
