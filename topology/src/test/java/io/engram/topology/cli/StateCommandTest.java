package io.engram.topology.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.engine.backend.HostBuf;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.schemas.SessionIndex;
import io.engram.state.codec.KvBlockCodec;
import io.engram.state.codec.KvDType;
import io.engram.state.rocksdb.RocksDbMemoryStore;
import io.engram.topology.SessionStageFactory;
import java.io.ByteArrayInputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code engram state inspect} over a real RocksDB memory store: a healthy session, and one with a damaged unit, a unit
 * the index does not list and a listed unit that is missing. (The savepoint/checkpoint source is covered end to end by
 * SavepointRestoreIT.)
 */
class StateCommandTest {
    static final int LAYERS = 2;
    static final int KV_DIM = 8;
    static final int BLOCK = 4;

    final StringWriter out = new StringWriter();
    final StringWriter err = new StringWriter();

    int run(String... args) {
        CliContext ctx = new CliContext(
                new PrintWriter(out, true),
                new PrintWriter(err, true),
                Map.of(),
                new ByteArrayInputStream(new byte[0]),
                false,
                SessionStageFactory.none(),
                new CompletableFuture<>());
        return new EngramCli(ctx).execute(args);
    }

    /** Encoded blocks of {@code tokens} tokens with seeded random K/V (blocks of {@link #BLOCK}). */
    static List<byte[]> blocks(int tokens, KvDType type, long seed) {
        try (CpuBackend backend = new CpuBackend(1, false)) {
            KvCache cache = new KvCache(backend, LAYERS, KV_DIM, BLOCK);
            SplittableRandom r = new SplittableRandom(seed);
            int[] toks = new int[tokens];
            int[] pos = new int[tokens];
            long[] src = new long[tokens];
            for (int i = 0; i < tokens; i++) {
                toks[i] = r.nextInt(100);
                pos[i] = i;
            }
            cache.append(toks, pos, src);
            List<byte[]> out = new ArrayList<>();
            for (KvBlock b : cache.blocks()) {
                for (int l = 0; l < LAYERS; l++) {
                    float[] k = HostBuf.of(b.keys(l));
                    float[] v = HostBuf.of(b.values(l));
                    for (int i = 0; i < k.length; i++) {
                        k[i] = (float) r.nextGaussian();
                        v[i] = (float) r.nextGaussian();
                    }
                }
                out.add(KvBlockCodec.encode(b, backend, KV_DIM, type));
            }
            return out;
        }
    }

    static SessionIndex index(String session, List<Long> ids, List<Integer> crcs, long nextSeq) {
        return SessionIndex.newBuilder()
                .setSessionId(session)
                .setNextSeq(nextSeq)
                .setBlockIds(ids)
                .setBlockCrcs(crcs)
                .setEventCount(2)
                .setModel("tiny")
                .setBlockSize(BLOCK)
                .build();
    }

    /** ada: 10 tokens in 3 INT8 units, all fine. bo: unit 0 damaged, unit 1 missing, unit 9 not in the index. */
    static void writeStore(Path dir) {
        try (RocksDbMemoryStore store = RocksDbMemoryStore.open(dir)) {
            List<byte[]> ada = blocks(10, KvDType.INT8, 1);
            List<Long> ids = new ArrayList<>();
            List<Integer> crcs = new ArrayList<>();
            for (int i = 0; i < ada.size(); i++) {
                store.putUnit("ada", i, ada.get(i));
                ids.add((long) i);
                crcs.add(KvBlockCodec.checksum(ada.get(i)));
            }
            store.putIndex("ada", index("ada", ids, crcs, 10));
            List<byte[]> bo = blocks(8, KvDType.F32, 2);
            byte[] damaged = bo.get(0).clone();
            damaged[damaged.length / 2] ^= 1;
            store.putUnit("bo", 0, damaged);
            store.putUnit("bo", 9, blocks(3, KvDType.BF16, 3).get(0));
            store.putIndex(
                    "bo",
                    index(
                            "bo",
                            List.of(0L, 1L),
                            List.of(KvBlockCodec.checksum(bo.get(0)), KvBlockCodec.checksum(bo.get(1))),
                            8));
        }
    }

    @Test
    void textListsUnitsWithIndexFieldsAndChecksumStatus(@TempDir Path dir) {
        writeStore(dir);
        assertThat(run("state", "inspect", "--rocksdb", dir.toString()))
                .as(err.toString())
                .isZero();
        List<String> lines = out.toString().lines().toList();
        assertThat(lines.get(0))
                .isEqualTo("session ada: 3 units, %,d bytes"
                        .formatted(KvBlockCodec.encodedSize(4, LAYERS, KV_DIM, KvDType.INT8) * 2
                                + KvBlockCodec.encodedSize(2, LAYERS, KV_DIM, KvDType.INT8)));
        assertThat(lines.get(1))
                .isEqualTo("  index: next_seq 10, events 2, blocks 3, model tiny, block_size 4, "
                        + "summarized_events 0, summarized_seq 0");
        assertThat(lines.get(2).split("\\s+"))
                .containsExactly("", "unit", "first_seq", "tokens", "bytes", "dtype", "checksum");
        assertThat(lines.get(5).trim().split("\\s+"))
                .containsExactly(
                        "2",
                        "8",
                        "2",
                        Long.toString(KvBlockCodec.encodedSize(2, LAYERS, KV_DIM, KvDType.INT8)),
                        "INT8",
                        "ok");
        String bo = out.toString().substring(out.toString().indexOf("session bo"));
        assertThat(bo)
                .contains("session bo: 3 units")
                .containsPattern("\\n\\s+0\\s+0\\s+4\\s+\\d+ F32\\s+crc_mismatch: stored CRC32C")
                .containsPattern("\\n\\s+1\\s+-\\s+0\\s+0 -\\s+missing: listed in the index but not stored")
                .containsPattern("\\n\\s+9\\s+0\\s+3\\s+\\d+ BF16\\s+not_in_index: the index does not list this unit");
        assertThat(err.toString()).contains("2 session(s), 6 unit(s)").contains("1 session(s) with units that fail");
    }

    @Test
    void jsonForOneSession(@TempDir Path dir) throws Exception {
        writeStore(dir);
        assertThat(run("state", "inspect", "--rocksdb", dir.toString(), "--session", "bo", "--format", "json"))
                .isZero();
        JsonNode all = new ObjectMapper().readTree(out.toString());
        assertThat(all).hasSize(1);
        JsonNode bo = all.get(0);
        assertThat(bo.path("session").asText()).isEqualTo("bo");
        assertThat(bo.path("healthy").asBoolean()).isFalse();
        assertThat(bo.path("index").path("block_ids").toString()).isEqualTo("[0,1]");
        assertThat(bo.path("units").findValuesAsText("checksum"))
                .containsExactly("CRC_MISMATCH", "MISSING", "NOT_IN_INDEX");
        assertThat(bo.path("units").get(1).path("first_seq").isNull()).isTrue();
        assertThat(bo.path("units").get(2).path("dtype").asText()).isEqualTo("BF16");
        assertThat(bo.path("units").get(2).path("tokens").asInt()).isEqualTo(3);
    }

    @Test
    void unknownSessionAndNonStoreDirectoryAreReportedWithExitCodes(@TempDir Path dir) {
        writeStore(dir.resolve("db"));
        assertThat(run("state", "inspect", "--rocksdb", dir.resolve("db").toString(), "-s", "zed"))
                .isEqualTo(ExitCode.UNAVAILABLE.code());
        assertThat(err.toString()).contains("no memory stored for session(s) [zed]");
        assertThat(run("state", "inspect", "--rocksdb", dir.toString())).isEqualTo(ExitCode.INVALID_INPUT.code());
        assertThat(run("state", "inspect", "--snapshot", dir.toString())).isEqualTo(ExitCode.INVALID_INPUT.code());
        assertThat(run("state", "inspect", "--snapshot", dir.toString(), "--rocksdb", dir.toString()))
                .isEqualTo(ExitCode.INVALID_INPUT.code());
        assertThat(err.toString())
                .contains("is not a RocksDB memory store")
                .contains("is not a savepoint or checkpoint directory")
                .contains("mutually exclusive");
        assertThat(out.toString()).isEmpty();
    }
}
