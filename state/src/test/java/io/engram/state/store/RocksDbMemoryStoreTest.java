package io.engram.state.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.state.rocksdb.RocksDbMemoryStore;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RocksDbMemoryStoreTest extends MemoryStoreContract {
    @TempDir Path dir;
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
}
