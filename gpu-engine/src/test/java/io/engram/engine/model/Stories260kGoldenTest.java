package io.engram.engine.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.SharedFiles;
import io.engram.engine.backend.Backend;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.backend.reference.ReferenceBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The real pretrained stories260K, greedy from BOS for 256 tokens, must reproduce the sequence documented by llama2.c
 * (and reproduced independently by numpy, PyTorch and llama.cpp; ../shared/models/stories260K/PROVENANCE.md).
 */
class Stories260kGoldenTest {

    static int[] referenceIds() throws Exception {
        Path prov = SharedFiles.require("models/stories260K/PROVENANCE.md");
        Matcher m = Pattern.compile("```\\s*\\n([0-9,]+)\\s*\\n```").matcher(Files.readString(prov));
        assertThat(m.find()).as("reference id block in %s", prov).isTrue();
        return Arrays.stream(m.group(1).split(",")).mapToInt(Integer::parseInt).toArray();
    }

    @ParameterizedTest(name = "{0} backend, block {1}, chunk {2}")
    @CsvSource({"cpu, 128, 512", "cpu, 16, 7", "reference, 128, 512"})
    void greedyFromBosMatchesLlama2c(String backendName, int block, int chunk) throws Exception {
        int[] expected = referenceIds();
        Path dir = SharedFiles.require("models/stories260K-hf");
        int steps = backendName.equals("reference") ? 64 : expected.length;
        try (Model model = Model.openHuggingFace(dir);
                Backend backend = backendName.equals("cpu") ? new CpuBackend(2, false) : new ReferenceBackend()) {
            Transformer t = new Transformer(
                    model.config(), model.weights(), backend, new EngineSettings(block, chunk, 2, false));
            KvCache cache = t.newCache();
            int[] out = new int[steps];
            int[] next = {1};
            for (int i = 0; i < steps; i++) {
                int[] pick = new int[1];
                t.forward(
                        cache,
                        next,
                        null,
                        new FullAttention(),
                        Transformer.Logits.LAST,
                        (seq, logits) -> pick[0] = argmax(logits));
                out[i] = pick[0];
                next = new int[] {pick[0]};
            }
            assertThat(out).containsExactly(Arrays.copyOf(expected, steps));
        }
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
