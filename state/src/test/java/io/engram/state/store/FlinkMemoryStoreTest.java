package io.engram.state.store;

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
        assertThatThrownBy(() -> holder.store.getUnit("s2", 0)).isInstanceOf(MemoryStoreException.class)
                .hasMessageContaining("'s1'").hasMessageContaining("'s2'");
        assertThatThrownBy(() -> holder.store.unitIds("s2")).isInstanceOf(MemoryStoreException.class);
    }
}
