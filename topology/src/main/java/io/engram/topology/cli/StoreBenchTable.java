package io.engram.topology.cli;

import io.engram.state.bench.CheckpointGrowth;
import io.engram.state.bench.KeyedStoreBench;
import io.engram.state.bench.StoreBench;
import io.engram.state.codec.KvDType;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import picocli.CommandLine.Option;

/**
 * {@code engram bench store}: write/read MB/s of memory units through the standalone RocksDB store and through Flink
 * keyed state on the RocksDB backend (the peer: ratio column), per KV dtype; then checkpoint growth per 1M tokens,
 * measured on the tiny test model and computed for an 8B-class model from the measured bytes.
 */
final class StoreBenchTable {
    /** Llama-3-8B-class KV shape: 32 layers, 8 KV heads of dim 128. */
    static final int EIGHT_B_LAYERS = 32;

    static final int EIGHT_B_KV_DIM = 8 * 128;

    @Option(
            names = "--units",
            defaultValue = "32",
            description = "store: units written and read per run (default ${DEFAULT-VALUE}).")
    int units;

    @Option(
            names = "--block-tokens",
            defaultValue = "16",
            description = "store: tokens per unit (default ${DEFAULT-VALUE}).")
    int blockTokens;

    @Option(
            names = "--layers",
            defaultValue = "" + EIGHT_B_LAYERS,
            description = "store: layers of the unit shape (default ${DEFAULT-VALUE}, 8B-class).")
    int layers;

    @Option(
            names = "--kv-dim",
            defaultValue = "" + EIGHT_B_KV_DIM,
            description = "store: KV heads x head dim (default ${DEFAULT-VALUE}, 8B-class).")
    int kvDim;

    @Option(
            names = "--dtypes",
            split = ",",
            defaultValue = "F32,BF16,INT8,INT4",
            description = "store: KV dtypes (default ${DEFAULT-VALUE}).")
    List<KvDType> dtypes;

    @Option(
            names = "--growth-tokens",
            defaultValue = "4096",
            description = "store: tokens the tiny model ingests for the growth rows (default ${DEFAULT-VALUE}).")
    int growthTokens;

    int run(CliContext ctx, int runs) {
        if (units < 1 || runs < 1 || growthTokens < 1) {
            throw new CliException(ExitCode.INVALID_INPUT, "--units, --runs and --growth-tokens must be positive");
        }
        StoreBench.Shape shape;
        try {
            shape = new StoreBench.Shape(layers, kvDim, blockTokens);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCode.INVALID_INPUT, e.getMessage());
        }
        Path work;
        try {
            work = Files.createTempDirectory("engram-bench-store-");
        } catch (IOException e) {
            throw new CliException(ExitCode.UNAVAILABLE, "cannot create a work directory: " + e.getMessage());
        }
        // one stderr line per phase: each phase is a few seconds, so a redrawn bar would show nothing more
        PrintWriter err = ctx.err();
        int steps = dtypes.size() + 2;
        try {
            List<StoreBench.Row> direct = new ArrayList<>();
            for (KvDType t : dtypes) {
                err.printf(
                        "bench store [%d/%d]: RocksDB memory store, %s, %d runs%n", direct.size() + 1, steps, t, runs);
                err.flush();
                direct.add(
                        StoreBench.direct(work.resolve("direct-" + t), t, StoreBench.units(shape, t, units, 42), runs));
            }
            err.printf("bench store [%d/%d]: Flink keyed state on RocksDB (local job), %s%n", steps - 1, steps, dtypes);
            err.flush();
            List<StoreBench.Row> keyed = KeyedStoreBench.run(
                    work.resolve("keyed"), dtypes, new KeyedStoreBench.Settings(shape, units, 42), runs);
            err.printf(
                    "bench store [%d/%d]: checkpoint growth, tiny model ingesting %d tokens%n",
                    steps, steps, growthTokens);
            err.flush();
            List<CheckpointGrowth.Row> growth = new ArrayList<>();
            for (CheckpointGrowth.Row tiny :
                    CheckpointGrowth.measureTiny(work.resolve("growth"), dtypes, growthTokens, blockTokens)) {
                growth.add(tiny);
                growth.add(CheckpointGrowth.computed(
                        "8B-class (32 layers x 8 KV heads x 128)", 2L * EIGHT_B_LAYERS * EIGHT_B_KV_DIM, tiny));
            }
            print(ctx.out(), shape, runs, direct, keyed, growth);
            return ExitCode.OK.code();
        } catch (Exception e) {
            throw e instanceof RuntimeException r
                    ? r
                    : new IllegalStateException("bench store failed: " + e.getMessage(), e);
        } finally {
            delete(work);
        }
    }

    private void print(
            PrintWriter out,
            StoreBench.Shape shape,
            int runs,
            List<StoreBench.Row> direct,
            List<StoreBench.Row> keyed,
            List<CheckpointGrowth.Row> growth) {
        out.printf(
                "machine: %d cpus, JDK %s; unit: %d tokens x %d layers x kvDim %d; %d units per run; %d runs; "
                        + "MB/s = 10^6 B/s, median (worst); reads follow the writes (warm)%n",
                Runtime.getRuntime().availableProcessors(),
                Runtime.version(),
                shape.blockTokens(),
                shape.layers(),
                shape.kvDim(),
                units,
                runs);
        out.printf(
                "%-12s %-5s %10s %20s %20s %9s %9s%n",
                "path", "dtype", "unit KiB", "write MB/s", "read MB/s", "write/rdb", "read/rdb");
        for (int i = 0; i < direct.size(); i++) {
            row(out, direct.get(i), direct.get(i));
            row(out, keyed.get(i), direct.get(i));
        }
        out.println();
        out.println(
                "checkpoint growth per 1M tokens: encoded = unit bytes before RocksDB; rocksdb = SST bytes of a RocksDB "
                        + "checkpoint of the store; flink = a native savepoint of a keyed operator on the RocksDB backend, minus an empty one");
        out.printf(
                "%-58s %-5s %12s %12s %15s %15s %15s %8s%n",
                "model",
                "dtype",
                "values/tok",
                "bytes/tok",
                "encoded MiB/1M",
                "rocksdb MiB/1M",
                "flink MiB/1M",
                "flink/enc");
        for (CheckpointGrowth.Row g : growth) {
            out.printf(
                    "%-58s %-5s %12d %12.1f %15.1f %15.1f %15.1f %8.3f%n",
                    g.model(),
                    g.dtype(),
                    g.valuesPerToken(),
                    g.bytesPerToken(),
                    g.encodedMiBPerMillion(),
                    g.checkpointMiBPerMillion(),
                    g.savepointMiBPerMillion(),
                    g.savepointMiBPerMillion() / g.encodedMiBPerMillion());
        }
        out.flush();
    }

    private static void row(PrintWriter out, StoreBench.Row r, StoreBench.Row peer) {
        out.printf(
                "%-12s %-5s %10.1f %20s %20s %9.2f %9.2f%n",
                r.path(),
                r.dtype(),
                r.unitBytes() / 1024.0,
                "%.1f (%.1f)".formatted(r.writeMBps(), r.worstWriteMBps()),
                "%.1f (%.1f)".formatted(r.readMBps(), r.worstReadMBps()),
                r.writeMBps() / peer.writeMBps(),
                r.readMBps() / peer.readMBps());
    }

    private static void delete(Path dir) {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete the bench's work directory " + dir, e);
        }
    }
}
