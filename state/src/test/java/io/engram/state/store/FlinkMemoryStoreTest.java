package io.engram.state.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.state.flink.FlinkMemoryStore;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The contract on Flink keyed state with the EmbeddedRocksDBStateBackend, through an operator's keyed state store. */
class FlinkMemoryStoreTest extends MemoryStoreContract {

    /** An operator that only owns the store; the test drives it by setting the current key. */
    static final class Holder extends AbstractStreamOperator<String> implements OneInputStreamOperator<String, String> {
        transient FlinkMemoryStore store;

        @Override
        public void open() throws Exception {
            super.open();
            store = new FlinkMemoryStore(getKeyedStateStore(), this::getCurrentKey);
        }

        @Override
        public void processElement(StreamRecord<String> element) {}
    }

    Holder holder;
    KeyedOneInputStreamOperatorTestHarness<String, String, String> harness;

    @BeforeEach
    void open() throws Exception {
        holder = new Holder();
        harness = new KeyedOneInputStreamOperatorTestHarness<>(holder, s -> s, Types.STRING);
        harness.setStateBackend(new EmbeddedRocksDBStateBackend());
        harness.open();
    }

    @AfterEach
    void close() throws Exception {
        harness.close();
    }

    @Override
    protected MemoryStore store() {
        return holder.store;
    }

    @Override
    protected void as(String session) {
        holder.setCurrentKey(session);
    }

    @Test
    void anotherSessionThanTheCurrentKeyIsRefused() {
        as("s1");
        assertThatThrownBy(() -> holder.store.getUnit("s2", 0))
                .isInstanceOf(MemoryStoreException.class)
                .hasMessageContaining("'s1'")
                .hasMessageContaining("'s2'");
        assertThatThrownBy(() -> holder.store.unitIds("s2")).isInstanceOf(MemoryStoreException.class);
    }

    @Test
    void withTheKeySetterAReadOfAnotherSessionsUnitHappensUnderItsKeyAndTheKeyComesBack() {
        FlinkMemoryStore scoped =
                new FlinkMemoryStore(holder.getKeyedStateStore(), holder::getCurrentKey, holder::setCurrentKey);
        as("s2");
        scoped.putUnit("s2", 7, new byte[] {1, 2, 3});
        as("s1");
        scoped.putUnit("s1", 7, new byte[] {9});
        // a batch across sessions: s2's cache brings a layer back while s1 is the current key
        assertThat(scoped.getUnit("s2", 7)).containsExactly(1, 2, 3);
        assertThat(holder.getCurrentKey()).isEqualTo("s1");
        assertThat(scoped.getUnit("s1", 7)).containsExactly(9);
        // writes, deletes and listings still refuse any session but the current key
        assertThatThrownBy(() -> scoped.putUnit("s2", 8, new byte[] {0})).isInstanceOf(MemoryStoreException.class);
        assertThatThrownBy(() -> scoped.unitIds("s2")).isInstanceOf(MemoryStoreException.class);
    }
}
