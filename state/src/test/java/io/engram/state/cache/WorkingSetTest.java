package io.engram.state.cache;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import org.junit.jupiter.api.Test;

class WorkingSetTest {
    final KvCache cache = new KvCache(new CpuBackend(1, false), 1, 4, 4);

    KvBlock block(long id) {
        return cache.allocateForRestore(id, id * 4);
    }

    @Test
    void evictsLeastRecentlyUsedAcrossSessionsWithinTheBudget() {
        WorkingSet ws = new WorkingSet(300);
        ws.put("a", 0, block(0), 100);
        ws.put("b", 0, block(1), 100);
        ws.put("a", 1, block(2), 100);
        assertThat(ws.get("a", 0)).isNotNull(); // a/0 is now the most recent
        ws.put("c", 0, block(3), 100); // over budget: the LRU entry b/0 goes
        assertThat(ws.get("b", 0)).isNull();
        assertThat(ws.get("a", 0)).isNotNull();
        assertThat(ws.bytes()).isEqualTo(300);
        assertThat(ws.bytes("a")).isEqualTo(200);
        assertThat(ws.bytes("b")).isZero();
        assertThat(ws.evictions()).isEqualTo(1);
        assertThat(ws.hits()).isEqualTo(2);
        assertThat(ws.misses()).isEqualTo(1);
    }

    @Test
    void replacingAnEntryRecountsItsBytesAndInvalidateDropsOneSessionOnly() {
        WorkingSet ws = new WorkingSet(1000);
        ws.put("a", 0, block(0), 100);
        ws.put("a", 0, block(0), 150);
        ws.put("b", 0, block(1), 100);
        assertThat(ws.bytes()).isEqualTo(250);
        ws.invalidate("a");
        assertThat(ws.get("a", 0)).isNull();
        assertThat(ws.get("b", 0)).isNotNull();
        assertThat(ws.bytes()).isEqualTo(100);
        assertThat(ws.size()).isEqualTo(1);
    }

    @Test
    void anEntryLargerThanTheBudgetStaysUntilTheNextPut() {
        WorkingSet ws = new WorkingSet(50);
        ws.put("a", 0, block(0), 100);
        assertThat(ws.get("a", 0)).isNotNull();
        ws.put("a", 1, block(1), 10);
        assertThat(ws.get("a", 0)).isNull();
        assertThat(ws.bytes()).isEqualTo(10);
    }
}
