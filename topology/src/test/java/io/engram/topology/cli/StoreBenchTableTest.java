package io.engram.topology.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.withinPercentage;

import io.engram.topology.SessionStageFactory;
import java.io.ByteArrayInputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * {@code engram bench store} on a small shape: both paths run (a unit read back wrong fails the run), and the growth rows
 * agree with the codec's layout. Throughput values are printed, never asserted.
 */
class StoreBenchTableTest {

    @Test
    void printsThroughputForBothPathsAndGrowthConsistentWithTheCodec() {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CliContext ctx = new CliContext(
                new PrintWriter(out, true),
                new PrintWriter(err, true),
                Map.of(),
                new ByteArrayInputStream(new byte[0]),
                false,
                SessionStageFactory.none(),
                new CompletableFuture<>());
        int code = new EngramCli(ctx)
                .execute(
                        "bench",
                        "store",
                        "--units",
                        "4",
                        "--runs",
                        "1",
                        "--layers",
                        "2",
                        "--kv-dim",
                        "8",
                        "--block-tokens",
                        "4",
                        "--dtypes",
                        "F32,INT8",
                        "--growth-tokens",
                        "300");
        assertThat(code).as(err.toString()).isZero();
        List<String> lines = out.toString().lines().toList();
        assertThat(lines.get(0)).contains("unit: 4 tokens x 2 layers x kvDim 8; 4 units per run; 1 runs");
        // header 34 B + 4 tokens x 20 B metadata + 2 layers x K,V x 4 x 8 values x 4 B + CRC 4 B
        assertThat(lines.get(2).split("\\s+"))
                .startsWith("rocksdb", "F32", "%.1f".formatted((34 + 80 + 2 * 2 * 32 * 4 + 4) / 1024.0));
        assertThat(lines.get(3).split("\\s+")).startsWith("flink-keyed", "F32");
        assertThat(lines.get(5)).startsWith("flink-keyed  INT8");
        String[] tinyF32 = lines.stream()
                .filter(l -> l.startsWith("tiny") && l.contains(" F32 "))
                .findFirst()
                .orElseThrow()
                .split("\\s+");
        String[] bigF32 = lines.stream()
                .filter(l -> l.startsWith("8B-class") && l.contains(" F32 "))
                .findFirst()
                .orElseThrow()
                .split("\\s+");
        int n = tinyF32.length;
        // columns from the right: flink/enc, flink MiB/1M, rocksdb MiB/1M, encoded MiB/1M, bytes/tok, values/tok
        long values = Long.parseLong(tinyF32[n - 6]);
        double perToken = Double.parseDouble(tinyF32[n - 5]);
        double encoded = Double.parseDouble(tinyF32[n - 4]);
        // F32: 20 B metadata + 4 B per value per token, plus block headers (38 B per block of 4 tokens at most)
        assertThat(perToken).isBetween(20 + 4.0 * values, 20 + 4.0 * values + 38 / 4.0 + 1);
        assertThat(Double.parseDouble(tinyF32[n - 3]))
                .as("rocksdb checkpoint MiB/1M")
                .isGreaterThan(0.9 * encoded);
        assertThat(Double.parseDouble(tinyF32[n - 2]))
                .as("flink savepoint MiB/1M")
                .isGreaterThan(0.9 * encoded);
        int m = bigF32.length;
        assertThat(Long.parseLong(bigF32[m - 6])).isEqualTo(2L * 32 * 8 * 128);
        assertThat(Double.parseDouble(bigF32[m - 5]))
                .isCloseTo(
                        20 + (perToken - 20) / values * 65536,
                        withinPercentage(0.05)); // the table rounds bytes/tok to 0.1
        assertThat(err.toString()).contains("bench store [4/4]: checkpoint growth");
    }
}
