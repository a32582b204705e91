package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.engram.topology.cli.CliContext;
import io.engram.topology.cli.EngramCli;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fault soak with {@code kill -9}, sized for CI: {@code engram bench reliability} runs {@code engram run} (broker,
 * Flink job on RocksDB, query app) in a child JVM with the shipped model, injects failures at a fifth of the ingests and
 * answers, kills the child with SIGKILL twice at random points of the stream and starts it again over its data directory;
 * then replays the stream minus the refused events through a fault-free child. The bench fails (exit 4) on any duplicate,
 * lost or different answer; here its printed row is checked as well.
 */
class KillSoakIT {
    private static final Pattern ROW = Pattern.compile(
            "\\| (\\d+) \\| (\\d+) \\| (\\d+) \\| (\\d+) \\| (\\d+) \\| (\\d+) \\| (\\d+) \\| (\\d+) \\| (\\d+) \\| (\\d+) \\| \\d+ \\|");

    @Test
    void killedAndFailingRunsAnswerEveryQueryOnceAsWithoutFaults(@TempDir Path tmp) {
        Path model = Path.of("..", "models", "engram-tiny").toAbsolutePath().normalize();
        assumeTrue(Files.isRegularFile(model.resolve("config.json")), "models/engram-tiny is not in this checkout");
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CliContext ctx = new CliContext(
                new PrintWriter(out, true),
                new PrintWriter(err, true),
                Map.of(),
                InputStream.nullInputStream(),
                false,
                io.engram.topology.EngineSessionStage::from,
                new CompletableFuture<>());
        int code = new EngramCli(ctx)
                .execute(
                        "bench",
                        "reliability",
                        "--model",
                        model.toString(),
                        "--sessions",
                        "3",
                        "--rounds",
                        "4",
                        "--kills",
                        "2",
                        "--fault-rate",
                        "0.2",
                        "--seed",
                        "5",
                        "--work-dir",
                        tmp.toString());
        assertThat(code)
                .as("bench reliability; stdout: %s%nstderr: %s", out, err)
                .isZero();
        Matcher m = ROW.matcher(out.toString());
        assertThat(m.find()).as(out.toString()).isTrue();
        assertThat(Integer.parseInt(m.group(1))).as("kills").isEqualTo(2);
        assertThat(Integer.parseInt(m.group(2)))
                .as("restores from a checkpoint (none when killed before the first)")
                .isBetween(0, 2);
        assertThat(Integer.parseInt(m.group(3))).as("events").isEqualTo(24);
        assertThat(Integer.parseInt(m.group(4))).as("queries").isEqualTo(12);
        assertThat(Integer.parseInt(m.group(5)) + Integer.parseInt(m.group(7)))
                .as("answered + dead-lettered")
                .isEqualTo(12);
        assertThat(Integer.parseInt(m.group(5))).as("answered").isPositive();
        assertThat(Integer.parseInt(m.group(6)) + Integer.parseInt(m.group(7)))
                .as("faults refused some events")
                .isPositive();
        assertThat(m.group(8) + "/" + m.group(9) + "/" + m.group(10))
                .as("duplicates/lost/different")
                .isEqualTo("0/0/0");
    }
}
