package io.engram.engine.model;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.engine.backend.Backend;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs training/'s whole pipeline in its CPU smoke configuration: data folder from the repository's own docs, our BPE
 * tokenizer, 0.4 minutes of training, export. Checks that the loss went down and that the engine loads the export in
 * both layouts with the same logits. Needs Python 3 with torch, transformers and tokenizers (ENGRAM_TRAINING_PYTHON
 * names the interpreter, PYTHONPATH is passed on); skipped with a message where they are missing, as in CI.
 */
class TrainingSmokeTest {

    @TempDir
    Path tmp;

    @Test
    void cpuSmokeRunLowersTheLossAndItsExportLoads() throws Exception {
        TrainingPython py = TrainingPython.require();
        Path repo = py.repo;
        Predicate<String> echo = l -> l.startsWith("step") || l.startsWith("done") || l.startsWith("model");

        Path data = tmp.resolve("data");
        Path out = tmp.resolve("out");
        assertThat(py.run(
                        List.of(
                                py.python,
                                "-m",
                                "engram_train.prepare",
                                "--text",
                                repo.resolve("README.md").toString(),
                                repo.resolve("docs/config.md").toString(),
                                repo.resolve("training/README.md").toString(),
                                "--vocab",
                                "512",
                                "--task-examples",
                                "500",
                                "--out",
                                data.toString()),
                        300,
                        echo))
                .as("prepare")
                .isZero();
        assertThat(py.run(
                        List.of(
                                py.python,
                                "-m",
                                "engram_train.train",
                                "--config",
                                "cpu-smoke",
                                "--minutes",
                                "0.4",
                                "--skip-eval",
                                "--data",
                                data.toString(),
                                "--out",
                                out.toString()),
                        600,
                        echo))
                .as("train")
                .isZero();

        List<Double> losses = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("train_log.jsonl"))) {
            losses.add(new ObjectMapper().readTree(line).get("loss").asDouble());
        }
        assertThat(losses).hasSizeGreaterThanOrEqualTo(3);
        double tail = losses.subList(losses.size() - 2, losses.size()).stream()
                .mapToDouble(d -> d)
                .average()
                .orElseThrow();
        System.out.printf("smoke training loss %.3f -> %.3f over %d log points%n", losses.get(0), tail, losses.size());
        assertThat(tail).as("loss at the end vs the first step").isLessThan(losses.get(0) - 0.2);

        Path export = out.resolve("engram-tiny");
        float[] hf = logits(Model.openHuggingFace(export));
        float[] gguf = logits(Model.open(export.resolve("engram-tiny.bf16.gguf")));
        for (int i = 0; i < hf.length; i++) {
            assertThat(hf[i]).isFinite();
            assertThat((double) Math.abs(hf[i] - gguf[i]))
                    .as("logit %d, safetensors vs GGUF", i)
                    .isLessThan(1e-4);
        }
    }

    private static float[] logits(Model model) {
        try (model;
                Backend backend = new CpuBackend(2, false)) {
            int[] prompt =
                    model.tokenizer().encode("The passkey is 4417.\n\nQuestion: What is the passkey?\nAnswer:", true);
            Transformer t =
                    new Transformer(model.config(), model.weights(), backend, new EngineSettings(16, 64, 2, false));
            KvCache cache = t.newCache();
            float[][] last = new float[1][];
            t.forward(
                    cache, prompt, null, new FullAttention(), Transformer.Logits.LAST, (seq, l) -> last[0] = l.clone());
            return last[0];
        }
    }
}
