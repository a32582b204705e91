package io.engram.engine.model;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * training/'s Python for the tests that run it: the interpreter ({@code ENGRAM_TRAINING_PYTHON}, else python3), the
 * check that it has PyTorch, transformers and tokenizers (a test skips with a message where it lacks them, as in a CI
 * without them), and a command runner that echoes the lines a test wants to see.
 */
final class TrainingPython {

    final String python = System.getenv().getOrDefault("ENGRAM_TRAINING_PYTHON", "python3");
    final Path repo = Path.of("").toAbsolutePath().getParent();
    final Path training = repo.resolve("training");

    /** This repository's training/ with a Python that has what it needs, or the calling test is skipped. */
    static TrainingPython require() throws IOException, InterruptedException {
        TrainingPython t = new TrainingPython();
        assumeTrue(
                Files.isDirectory(t.training.resolve("engram_train")),
                "training/engram_train not found from " + t.repo);
        assumeTrue(
                t.run(List.of(t.python, "-c", "import torch, transformers, tokenizers"), 120, l -> false) == 0,
                "SKIPPED: " + t.python
                        + " lacks torch/transformers/tokenizers (set ENGRAM_TRAINING_PYTHON or PYTHONPATH)");
        return t;
    }

    /** Runs {@code cmd} in training/; its exit code, or -1 when it ran past {@code seconds}. */
    int run(List<String> cmd, int seconds, Predicate<String> echo) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(cmd)
                .directory(training.toFile())
                .redirectErrorStream(true)
                .start();
        Thread pump = Thread.ofVirtual().start(() -> {
            try {
                String s = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                s.lines()
                        .filter(l -> echo.test(l) || l.contains("Error"))
                        .forEach(l -> System.out.println("[training] " + l));
            } catch (IOException ignored) {
                // the process ended
            }
        });
        if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return -1;
        }
        pump.join(5000);
        return p.exitValue();
    }
}
