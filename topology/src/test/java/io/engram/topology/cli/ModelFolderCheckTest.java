package io.engram.topology.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.topology.EngineSessionStage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A missing, truncated or mismatched model folder is refused when the job is built: exit code 3, a message naming the
 * file and what is wrong, no stack trace, nothing started. Uses the committed smoke export of gpu-engine's tests.
 */
class ModelFolderCheckTest {

    static final Path SMOKE = Path.of("..", "gpu-engine", "src", "test", "resources", "engram-smoke");

    @TempDir
    Path tmp;

    final StringWriter out = new StringWriter();
    final StringWriter err = new StringWriter();

    int run(Path modelDir) {
        CliContext ctx = new CliContext(
                new PrintWriter(out, true),
                new PrintWriter(err, true),
                Map.of(),
                new ByteArrayInputStream(new byte[0]),
                false,
                EngineSessionStage::from,
                new CompletableFuture<>());
        return new EngramCli(ctx).execute("run", "--set", "engram.model.dir=" + modelDir);
    }

    Path copyOfSmoke() throws IOException {
        Path dir = tmp.resolve("model");
        Files.createDirectories(dir);
        try (Stream<Path> files = Files.list(SMOKE)) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        return dir;
    }

    void assertRefused(int code, String... mentions) {
        assertThat(code).isEqualTo(ExitCode.UNAVAILABLE.code());
        assertThat(err.toString()).contains(mentions).doesNotContain("\tat ").doesNotContain("Exception:");
        assertThat(out.toString()).isEmpty();
    }

    @Test
    void truncatedWeightsAreNamed() throws IOException {
        Path dir = copyOfSmoke();
        Path weights = dir.resolve("model.safetensors");
        try (RandomAccessFile f = new RandomAccessFile(weights.toFile(), "rw")) {
            f.setLength(f.length() - 100);
        }
        assertRefused(run(dir), weights.toString(), "truncated");
    }

    @Test
    void missingWeightsAreNamed() throws IOException {
        Path dir = copyOfSmoke();
        Files.delete(dir.resolve("model.safetensors"));
        assertRefused(run(dir), "no model.safetensors");
    }

    @Test
    void brokenTokenizerIsNamed() throws IOException {
        Path dir = copyOfSmoke();
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"BPE\", \"vocab\": ");
        assertRefused(run(dir), "tokenizer.json");
    }

    @Test
    void configOfAnotherShapeIsAMismatch() throws IOException {
        Path dir = copyOfSmoke();
        Path config = dir.resolve("config.json");
        Files.writeString(
                config, Files.readString(config).replaceFirst("\"hidden_size\": *\\d+", "\"hidden_size\": 64"));
        assertRefused(run(dir), dir.toString());
    }

    @Test
    void folderWithoutConfigIsNamed() {
        assertRefused(run(tmp), "no config.json");
    }
}
