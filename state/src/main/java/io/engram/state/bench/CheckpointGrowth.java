package io.engram.state.bench;

import io.engram.engine.backend.Backend;
import io.engram.engine.backend.Backends;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.session.Engine;
import io.engram.engine.session.SessionEngine;
import io.engram.engine.tensor.DType;
import io.engram.state.codec.KvBlockCodec;
import io.engram.state.codec.KvDType;
import io.engram.state.rocksdb.RocksDbMemoryStore;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * How much durable state memory adds per token: the tiny test model (TinyModels LLAMA_GQA) ingests seeded text through
 * the real engine, its KV blocks are encoded in each dtype and written to a RocksDB memory store, and a RocksDB
 * checkpoint of the store is measured (bytes of its SST files per token), and so is a native savepoint of a Flink keyed
 * operator holding the same units through {@link io.engram.state.flink.FlinkMemoryStore} on the RocksDB backend (all its
 * files, minus those of an empty one). For a bigger model the growth is computed from the measured bytes per stored
 * value and per token.
 */
public final class CheckpointGrowth {
    /** Per-token metadata of a stored block: token id, position, provenance, score (see {@link KvBlockCodec}). */
    static final int META_BYTES_PER_TOKEN = 4 + 4 + 8 + 4;

    static final double PER_MILLION = 1_000_000.0;

    private CheckpointGrowth() {}

    /**
     * One row.
     *
     * @param model the model and how the row was obtained
     * @param valuesPerToken K and V values stored per token (2 x layers x kvHeads x headDim)
     * @param bytesPerToken encoded unit bytes per token
     * @param encodedMiBPerMillion encoded unit bytes per 1M tokens, MiB
     * @param checkpointMiBPerMillion RocksDB checkpoint (SST) bytes per 1M tokens, MiB
     * @param savepointMiBPerMillion Flink native savepoint bytes per 1M tokens, MiB
     * @param measured true when measured on real bytes, false when computed from a measured row
     */
    public record Row(
            String model,
            KvDType dtype,
            long valuesPerToken,
            double bytesPerToken,
            double encodedMiBPerMillion,
            double checkpointMiBPerMillion,
            double savepointMiBPerMillion,
            boolean measured) {}

    /** Measures the tiny model with about {@code tokens} tokens (in sessions of at most the model's context) per dtype. */
    public static List<Row> measureTiny(Path work, List<KvDType> types, int tokens, int blockSize) throws Exception {
        Path modelDir = TinyModels.write(work.resolve("model"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        List<List<KvBlock>> sessions = new ArrayList<>();
        List<Row> rows = new ArrayList<>();
        try (Engine opened = Engine.open(Engine.Spec.tool(modelDir, Backends.DeviceSettings.cpu(), 1, false)
                .withBlockSize(blockSize))) {
            SessionEngine engine = opened.session();
            Backend backend = opened.backend();
            int context = opened.config().maxPositions();
            SplittableRandom r = new SplittableRandom(7);
            long total = 0;
            KvCache probe = engine.newMemory();
            while (total < tokens) {
                KvCache mem = engine.newMemory();
                for (int event = 0; ; event++) {
                    String text = sentence(r);
                    if (mem.nextSeq() + text.length() + 8 > context) {
                        break; // byte-level BPE: at most one token per (ASCII) char, plus specials; stay inside the
                        // context
                    }
                    engine.ingest(mem, text, event);
                }
                total += mem.nextSeq();
                sessions.add(mem.blocks());
            }
            long values = 2L * probe.layers() * probe.kvDim();
            String name = "tiny llama-gqa (%d layers x kvDim %d)".formatted(probe.layers(), probe.kvDim());
            long emptySavepoint = SavepointGrowth.savepointBytes(work.resolve("savepoint-empty"), List.of());
            for (KvDType type : types) {
                Path dir = work.resolve("store-" + type);
                long encoded = 0;
                List<SavepointGrowth.SessionUnits> units = new ArrayList<>();
                try (RocksDbMemoryStore store = RocksDbMemoryStore.open(dir)) {
                    for (int s = 0; s < sessions.size(); s++) {
                        List<KvBlock> blocks = sessions.get(s);
                        long[] ids = new long[blocks.size()];
                        byte[][] encodedUnits = new byte[blocks.size()][];
                        for (int i = 0; i < blocks.size(); i++) {
                            ids[i] = blocks.get(i).id();
                            encodedUnits[i] = KvBlockCodec.encode(blocks.get(i), backend, probe.kvDim(), type);
                            store.putUnit("growth-" + s, ids[i], encodedUnits[i]);
                            encoded += encodedUnits[i].length;
                        }
                        units.add(new SavepointGrowth.SessionUnits("growth-" + s, ids, encodedUnits));
                    }
                    store.checkpoint(work.resolve("checkpoint-" + type));
                }
                long sst = sstBytes(work.resolve("checkpoint-" + type));
                long savepoint =
                        SavepointGrowth.savepointBytes(work.resolve("savepoint-" + type), units) - emptySavepoint;
                rows.add(new Row(
                        name + ", " + total + " tokens measured",
                        type,
                        values,
                        (double) encoded / total,
                        mibPerMillion(encoded, total),
                        mibPerMillion(sst, total),
                        mibPerMillion(savepoint, total),
                        true));
            }
        }
        return rows;
    }

    private static double mibPerMillion(long bytes, long tokens) {
        return bytes / (double) tokens * PER_MILLION / (1 << 20);
    }

    /**
     * The growth of a model storing {@code valuesPerToken} values per token, from a measured row: its bytes per stored
     * value and its checkpoint- and savepoint-to-encoded ratios carry over; the per-token metadata is fixed.
     */
    public static Row computed(String model, long valuesPerToken, Row measured) {
        double perValue = (measured.bytesPerToken() - META_BYTES_PER_TOKEN) / measured.valuesPerToken();
        double perToken = META_BYTES_PER_TOKEN + perValue * valuesPerToken;
        double encoded = perToken * PER_MILLION / (1 << 20);
        return new Row(
                model + ", computed",
                measured.dtype(),
                valuesPerToken,
                perToken,
                encoded,
                encoded * measured.checkpointMiBPerMillion() / measured.encodedMiBPerMillion(),
                encoded * measured.savepointMiBPerMillion() / measured.encodedMiBPerMillion(),
                false);
    }

    private static String sentence(SplittableRandom r) {
        String[] words = {
            "the",
            "keeper",
            "counted",
            "gulls",
            "vault",
            "code",
            "lighthouse",
            "north",
            "stone",
            "river",
            "morning",
            "seven",
            "ledger",
            "harbour",
            "lamp",
            "tide"
        };
        StringBuilder sb = new StringBuilder();
        int n = 6 + r.nextInt(6);
        for (int i = 0; i < n; i++) {
            sb.append(i == 0 ? "" : " ").append(words[r.nextInt(words.length)]);
        }
        return sb.append(" ").append(r.nextInt(10000)).append(". ").toString();
    }

    private static long sstBytes(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(p -> p.getFileName().toString().endsWith(".sst"))
                    .mapToLong(p -> {
                        try {
                            return Files.size(p);
                        } catch (IOException e) {
                            throw new UncheckedIOException(e);
                        }
                    })
                    .sum();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list checkpoint " + dir, e);
        }
    }
}
