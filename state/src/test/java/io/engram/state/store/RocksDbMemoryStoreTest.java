package io.engram.state.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.state.rocksdb.RocksDbMemoryStore;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RocksDbMemoryStoreTest extends MemoryStoreContract {
    @TempDir
    Path dir;

    RocksDbMemoryStore store;

    @BeforeEach
    void open() {
        store = RocksDbMemoryStore.open(dir.resolve("db"));
    }

    @AfterEach
    void close() {
        store.close();
    }

    @Override
    protected MemoryStore store() {
        return store;
    }

    @Override
    protected void as(String session) {}

    @Test
    void dataSurvivesReopening() {
        store.putUnit("s", 5, bytes("five"));
        store.putIndex("s", index("s", 5));
        store.close();
        store = RocksDbMemoryStore.open(dir.resolve("db"));
        assertThat(store.getUnit("s", 5)).isEqualTo(bytes("five"));
        assertThat(store.getIndex("s")).isEqualTo(index("s", 5));
    }

    @Test
    void sessionsListsIndexedSessionsAndACheckpointIsAStoreWithTheSameContent() {
        store.putUnit("ab", 1, bytes("x"));
        store.putIndex("ab", index("ab", 1));
        store.putIndex("a", index("a", 2));
        store.putUnit("orphan", 3, bytes("y")); // units without an index are not a session of their own
        assertThat(store.sessions()).containsExactly("a", "ab");
        store.checkpoint(dir.resolve("copy"));
        store.putIndex("later", index("later", 4));
        try (RocksDbMemoryStore copy = RocksDbMemoryStore.open(dir.resolve("copy"))) {
            assertThat(copy.sessions()).containsExactly("a", "ab");
            assertThat(StoredSession.read(copy, "ab").sameContent(StoredSession.read(store, "ab")))
                    .isTrue();
            assertThat(StoredSession.read(copy, "orphan").index()).isNull();
            assertThat(StoredSession.read(copy, "nobody")).isNull();
        }
    }
}
