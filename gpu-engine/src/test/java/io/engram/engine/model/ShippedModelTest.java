package io.engram.engine.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The model Engram ships (models/engram-tiny): its files are what the engine's default needs, under the size the repo
 * allows, and its GGUF copy gives the logits of its safetensors. ReferenceGoldenTest checks it against transformers.
 */
class ShippedModelTest {

    /** models/engram-tiny of this checkout (the engine's default model). */
    static Path shipped() {
        Path dir = Path.of("..", "models", "engram-tiny").toAbsolutePath().normalize();
        assumeTrue(Files.isRegularFile(dir.resolve("config.json")), "models/engram-tiny is not in this checkout");
        return dir;
    }

    @Test
    void theFolderHoldsEveryFileTheEngineAndPeersLoadUnder30MB() throws Exception {
        Path dir = shipped();
        for (String f : new String[] {
            "config.json",
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "engram-tiny.bf16.gguf",
            "MODEL.md",
            "loss.png"
        }) {
            assertThat(dir.resolve(f)).as(f).isRegularFile();
        }
        long bytes;
        try (Stream<Path> files = Files.walk(dir)) {
            bytes = files.filter(Files::isRegularFile)
                    .mapToLong(p -> p.toFile().length())
                    .sum();
        }
        assertThat(bytes).as("models/engram-tiny in bytes").isLessThan(30L << 20);
    }

    @Test
    void ggufCopyGivesTheSameLogitsAsTheSafetensors() throws Exception {
        Path dir = shipped();
        int[] prompt = new int[1];
        double worst = EngramSmokeExportTest.ggufVersusSafetensors(
                dir,
                "The vault code of the old customs house was 7481."
                        + "\n\nQuestion: What is the vault code of the old customs house?\nAnswer:",
                prompt);
        System.out.printf("engram-tiny GGUF vs safetensors: max |dlogit| %.2e over %d tokens%n", worst, prompt[0]);
        assertThat(worst).as("same BF16 weights through two loaders").isLessThan(1e-4);
    }
}
