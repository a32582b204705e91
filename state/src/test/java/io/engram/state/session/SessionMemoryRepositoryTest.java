package io.engram.state.session;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.backend.HostBuf;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.schemas.SessionIndex;
import io.engram.state.cache.WorkingSet;
import io.engram.state.codec.CorruptMemoryException;
import io.engram.state.codec.KvDType;
import io.engram.state.rocksdb.RocksDbMemoryStore;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Stored memory written and read back through the repository; damaged blocks are left out and reported, never served. */
class SessionMemoryRepositoryTest {
    static final int LAYERS = 2;
    static final int KV_DIM = 8;
    static final int BLOCK = 4;

    @TempDir
    Path dir;

    final CpuBackend backend = new CpuBackend(1, false);
    RocksDbMemoryStore store;
    SessionMemoryRepository repo;

    @BeforeEach
    void open() {
        store = RocksDbMemoryStore.open(dir.resolve("db"));
        repo = new SessionMemoryRepository(
                store,
                new WorkingSet(1L << 20),
                backend,
                () -> new KvCache(backend, LAYERS, KV_DIM, BLOCK),
                KvDType.F32,
                "m",
                BLOCK);
    }

    @AfterEach
    void close() {
        store.close();
    }

    /** Appends {@code n} tokens with random K/V and stores every block with an index, as an event's end does. */
    SessionIndex fill(String session, KvCache mem, int n) {
        SplittableRandom r = new SplittableRandom(n);
        int[] toks = new int[n];
        int[] pos = new int[n];
        long[] src = new long[n];
        for (int i = 0; i < n; i++) {
            pos[i] = (int) mem.nextSeq() + i;
        }
        for (KvCache.Placement p : mem.append(toks, pos, src)) {
            for (int l = 0; l < LAYERS; l++) {
                float[] k = HostBuf.of(p.block().keys(l));
                float[] v = HostBuf.of(p.block().values(l));
                for (int i = p.slot() * KV_DIM; i < (p.slot() + p.count()) * KV_DIM; i++) {
                    k[i] = (float) r.nextGaussian();
                    v[i] = (float) r.nextGaussian();
                }
            }
        }
        Map<Long, Integer> crcs = SessionMemoryRepository.checksums(repo.index(session));
        for (SessionMemoryRepository.Encoded e : repo.encode(mem, mem.blocks())) {
            repo.write(session, mem, e);
            crcs.put(e.block().id(), e.crc());
        }
        List<Long> ids = new ArrayList<>();
        List<Integer> list = new ArrayList<>();
        for (KvBlock b : mem.blocks()) {
            ids.add(b.id());
            list.add(crcs.get(b.id()));
        }
        SessionIndex idx = SessionIndex.newBuilder()
                .setSessionId(session)
                .setNextSeq(mem.nextSeq())
                .setBlockIds(ids)
                .setBlockCrcs(list)
                .setEventCount(1)
                .setModel("m")
                .setBlockSize(BLOCK)
                .setSummarizedEvents(0)
                .setSummarizedSeq(0)
                .setDroppedTokens(0)
                .setDroppedUnits(0)
                .build();
        repo.saveIndex(session, idx);
        return idx;
    }

    @Test
    void aStoredSessionLoadsBackWithTheSameBlocksAndFingerprint() {
        SessionIndex idx = fill("s", repo.create("s"), 10);
        repo.invalidate("s");
        SessionMemoryRepository.Loaded l = repo.load("s", idx);
        assertThat(l.damaged()).isEmpty();
        assertThat(l.memory().blocks()).extracting(KvBlock::id).containsExactly(0L, 1L, 2L);
        assertThat(l.memory().nextSeq()).isEqualTo(10);
        assertThat(repo.load("s", idx).fingerprint())
                .as("warm from the working set: same")
                .isEqualTo(l.fingerprint());
    }

    @Test
    void aLazyLoadLeavesFullBlocksInTheStoreUntilALayerIsNeededAndThenGivesTheSameValues() {
        SessionIndex idx = fill("s", repo.create("s"), 10);
        repo.invalidate("s");
        KvCache eager = repo.load("s", idx).memory();
        SessionMemoryRepository lazy = new SessionMemoryRepository(
                store,
                new WorkingSet(1L << 20),
                backend,
                () -> new KvCache(backend, LAYERS, KV_DIM, BLOCK),
                KvDType.F32,
                "m",
                BLOCK,
                true);
        SessionMemoryRepository.Loaded l = lazy.load("s", idx);
        assertThat(l.damaged()).isEmpty();
        assertThat(l.fingerprint()).isEqualTo(repo.load("s", idx).fingerprint());
        KvCache mem = l.memory();
        assertThat(mem.blocks())
                .extracting(KvBlock::residentLayers)
                .as("full blocks wait in the store; the tail is decoded")
                .containsExactly(0, 0, LAYERS);
        for (int b = 0; b < 3; b++) {
            KvBlock x = mem.blocks().get(b);
            KvBlock y = eager.blocks().get(b);
            assertThat(x.length()).isEqualTo(y.length());
            for (int i = 0; i < x.length(); i++) {
                assertThat(x.token(i)).isEqualTo(y.token(i));
                assertThat(x.position(i)).isEqualTo(y.position(i));
            }
            for (int layer = 0; layer < LAYERS; layer++) {
                mem.ensureResident(x, layer);
                assertThat(java.util.Arrays.copyOf(HostBuf.of(x.keys(layer)), x.length() * KV_DIM))
                        .isEqualTo(java.util.Arrays.copyOf(HostBuf.of(y.keys(layer)), y.length() * KV_DIM));
                assertThat(java.util.Arrays.copyOf(HostBuf.of(x.values(layer)), x.length() * KV_DIM))
                        .isEqualTo(java.util.Arrays.copyOf(HostBuf.of(y.values(layer)), y.length() * KV_DIM));
            }
        }
        float[] key = new float[KV_DIM];
        KvCache again = lazy.load("s", idx).memory(); // from the working set: the same blocks, now resident
        again.readKey(again.blocks().get(0), 1, 2, key);
        assertThat(key[0]).isEqualTo(HostBuf.of(eager.blocks().get(0).keys(1))[2 * KV_DIM]);
    }

    @Test
    void aFlippedByteOrAMissingBlockIsLeftOutWithBothChecksumsAndItsIdIsNeverReused() {
        SessionIndex idx = fill("s", repo.create("s"), 12);
        byte[] b1 = store.getUnit("s", 1);
        b1[40] ^= 1;
        store.putUnit("s", 1, b1);
        store.deleteUnit("s", 2);
        repo.invalidate("s");
        SessionMemoryRepository.Loaded l = repo.load("s", idx);
        assertThat(l.memory().blocks()).extracting(KvBlock::id).containsExactly(0L);
        assertThat(l.damaged()).hasSize(2);
        assertThat(l.damaged().get(0)).satisfies(d -> {
            assertThat(d.blockId()).isEqualTo(1);
            assertThat(d.indexCrc()).isEqualTo(idx.getBlockCrcs().get(1));
            assertThat(d.storedCrc())
                    .isEqualTo(idx.getBlockCrcs().get(1)); // the bytes changed, not their stored checksum
            assertThat(d.reason()).contains("does not match its own checksum");
            assertThat(d.firstSeq()).isEqualTo(4);
        });
        assertThat(l.damaged().get(1)).satisfies(d -> {
            assertThat(d.blockId()).isEqualTo(2);
            assertThat(d.storedCrc()).isNull();
            assertThat(d.reason()).contains("missing");
        });
        int[] one = {0};
        var placed = l.memory().append(one, new int[] {12}, new long[1]);
        assertThat(placed.get(0).block().id())
                .as("a new block gets an id above the damaged ones")
                .isEqualTo(3);
    }

    @Test
    void anotherVersionThanTheIndexListsIsDamagedAndAForeignIndexIsRefused() {
        KvCache mem = repo.create("s");
        SessionIndex idx = fill("s", mem, 6);
        fill("s", mem, 1); // block 1 rewritten with a 7th token; the old index still lists its 6-token version
        repo.invalidate("s");
        SessionMemoryRepository.Loaded l = repo.load("s", idx);
        assertThat(l.damaged()).singleElement().satisfies(d -> {
            assertThat(d.blockId()).isEqualTo(1);
            assertThat(d.storedCrc()).isNotEqualTo(d.indexCrc());
            assertThat(d.reason()).contains("not the version the index lists");
        });
        assertThatThrownBy(() -> repo.load("t", idx)).isInstanceOf(CorruptMemoryException.class);
        SessionIndex other = SessionIndex.newBuilder(idx).setModel("other").build();
        assertThatThrownBy(() -> repo.load("s", other))
                .isInstanceOf(IncompatibleMemoryException.class)
                .hasMessageContaining("built with model other");
    }

    @Test
    void aStoredFullBlockIsOffloadedWithoutACopyAndReadBackFromTheStore() {
        KvCache mem = repo.create("s");
        SessionIndex idx = fill("s", mem, 3 * BLOCK + 2); // three full blocks and a partial one
        KvCache loaded = repo.load("s", idx).memory();
        KvBlock full = loaded.blocks().get(1);
        KvBlock partial = loaded.blocks().get(3);
        float[] before = HostBuf.of(full.keys(1)).clone();
        loaded.offload(full, 1);
        assertThat(loaded.unitStore().bytes())
                .as("a stored full block is not copied")
                .isZero();
        loaded.offload(partial, 1);
        assertThat(loaded.unitStore().bytes())
                .as("a partial block may still grow: copied")
                .isPositive();
        loaded.ensureResident(full, 1);
        assertThat(java.util.Arrays.copyOf(HostBuf.of(full.keys(1)), BLOCK * KV_DIM))
                .isEqualTo(java.util.Arrays.copyOf(before, BLOCK * KV_DIM));
    }
}
