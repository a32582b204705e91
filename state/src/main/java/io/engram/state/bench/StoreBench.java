package io.engram.state.bench;

import io.engram.engine.backend.HostBuf;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.state.codec.KvBlockCodec;
import io.engram.state.codec.KvDType;
import io.engram.state.rocksdb.RocksDbMemoryStore;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Write and read throughput of encoded memory units through the standalone {@link RocksDbMemoryStore}; the Flink
 * keyed-state peer is {@link KeyedStoreBench}. Units are real encodings ({@link KvBlockCodec}) of blocks with seeded
 * Gaussian K/V of a given shape; every read is compared with what was written (a wrong byte fails the run).
 *
 * <p>Reads follow the writes in the same process (memtable and block cache warm), the same way for both paths.
 */
public final class StoreBench {

    /**
     * The shape of a unit.
     *
     * @param layers transformer layers
     * @param kvDim KV heads x head dim
     * @param blockTokens tokens per unit
     */
    public record Shape(int layers, int kvDim, int blockTokens) implements java.io.Serializable {
        public Shape {
            if (layers < 1 || kvDim < 1 || blockTokens < 1) {
                throw new IllegalArgumentException("layers, kvDim and block tokens must be positive: " + this);
            }
        }

        /** K and V values per token. */
        public long valuesPerToken() {
            return 2L * layers * kvDim;
        }
    }

    /**
     * One measured row: medians and worst of {@code runs} runs of writing then reading {@code units} units.
     *
     * @param unitBytes bytes of one encoded unit
     */
    public record Row(
            String path,
            KvDType dtype,
            int units,
            long unitBytes,
            double writeMBps,
            double readMBps,
            double worstWriteMBps,
            double worstReadMBps,
            int runs) {}

    /** Timings of one run: nanoseconds to write and to read all units. */
    public record Run(long writeNanos, long readNanos) implements java.io.Serializable {}

    private StoreBench() {}

    /** {@code count} full units of {@code shape} in {@code type}, seeded. */
    public static List<byte[]> units(Shape shape, KvDType type, int count, long seed) {
        List<byte[]> out = new ArrayList<>(count);
        SplittableRandom r = new SplittableRandom(seed);
        try (CpuBackend backend = new CpuBackend(1, false)) {
            for (int u = 0; u < count; u++) {
                KvCache cache = new KvCache(backend, shape.layers(), shape.kvDim(), shape.blockTokens());
                int n = shape.blockTokens();
                int[] tokens = new int[n];
                int[] positions = new int[n];
                for (int i = 0; i < n; i++) {
                    tokens[i] = r.nextInt(32000);
                    positions[i] = u * n + i;
                }
                cache.append(tokens, positions, new long[n]);
                KvBlock b = cache.blocks().get(0);
                for (int l = 0; l < shape.layers(); l++) {
                    fill(HostBuf.of(b.keys(l)), r);
                    fill(HostBuf.of(b.values(l)), r);
                }
                out.add(KvBlockCodec.encode(b, backend, shape.kvDim(), type));
            }
        }
        return out;
    }

    private static void fill(float[] v, SplittableRandom r) {
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
    }

    /** Writes then reads {@code units} under a fresh session per run in a store at {@code dir}. */
    public static Row direct(Path dir, KvDType type, List<byte[]> units, int runs) {
        List<Run> results = new ArrayList<>();
        try (RocksDbMemoryStore store = RocksDbMemoryStore.open(dir)) {
            for (int run = 0; run < runs; run++) {
                String session = "bench-" + type + "-" + run;
                long t0 = System.nanoTime();
                for (int i = 0; i < units.size(); i++) {
                    store.putUnit(session, i, units.get(i));
                }
                long t1 = System.nanoTime();
                for (int i = 0; i < units.size(); i++) {
                    check(units.get(i), store.getUnit(session, i), session, i);
                }
                results.add(new Run(t1 - t0, System.nanoTime() - t1));
            }
        }
        return row("rocksdb", type, units.get(0).length, units.size(), results);
    }

    /** Fails when {@code read} is not {@code written}: a benchmark that reads wrong bytes measures nothing. */
    static void check(byte[] written, byte[] read, String session, long unit) {
        if (!Arrays.equals(written, read)) {
            throw new IllegalStateException("unit " + unit + " of " + session + " read back different bytes");
        }
    }

    /**
     * The row of {@code runs}, each over {@code count} units of {@code unitBytes} (all units of a shape and dtype have
     * one size): median and worst MB/s (10^6 bytes per second).
     */
    public static Row row(String path, KvDType type, long unitBytes, int count, List<Run> runs) {
        long bytes = unitBytes * count;
        double[] w = new double[runs.size()];
        double[] r = new double[runs.size()];
        for (int i = 0; i < runs.size(); i++) {
            w[i] = bytes / 1e6 / (runs.get(i).writeNanos() / 1e9);
            r[i] = bytes / 1e6 / (runs.get(i).readNanos() / 1e9);
        }
        Arrays.sort(w);
        Arrays.sort(r);
        return new Row(path, type, count, unitBytes, w[w.length / 2], r[r.length / 2], w[0], r[0], runs.size());
    }
}
