package io.engram.state.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.schemas.EngramSchemas;
import io.engram.schemas.SessionIndex;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The behaviour every {@link MemoryStore} must have, run against each implementation. {@link #as} switches the
 * session being processed (a no-op for stores that are not scoped to a current key).
 */
public abstract class MemoryStoreContract {

    protected abstract MemoryStore store();

    /** Makes {@code session} the one being processed (Flink: the current key). */
    protected abstract void as(String session);

    @BeforeAll
    static void trust() {
        EngramSchemas.trustEngramClasses();
    }

    static SessionIndex index(String session, long... ids) {
        List<Long> list = new java.util.ArrayList<>();
        for (long id : ids) {
            list.add(id);
        }
        return SessionIndex.newBuilder()
                .setSessionId(session)
                .setNextSeq(ids.length * 128L)
                .setBlockIds(list)
                .setEventCount(ids.length)
                .setModel("m")
                .setBlockSize(128)
                .build();
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void unitsAndIndexRoundTripAndClearLeavesNothing() {
        as("s1");
        MemoryStore st = store();
        assertThat(st.getIndex("s1")).isNull();
        assertThat(st.unitIds("s1")).isEmpty();
        st.putUnit("s1", 2, bytes("two"));
        st.putUnit("s1", 0, bytes("zero"));
        st.putUnit("s1", 300, bytes("three hundred"));
        st.putIndex("s1", index("s1", 0, 2, 300));
        assertThat(st.unitIds("s1")).containsExactly(0L, 2L, 300L);
        assertThat(st.getUnit("s1", 2)).isEqualTo(bytes("two"));
        assertThat(st.getUnit("s1", 7)).isNull();
        assertThat(st.getIndex("s1")).isEqualTo(index("s1", 0, 2, 300));
        st.putUnit("s1", 2, bytes("two, rewritten"));
        assertThat(st.getUnit("s1", 2)).isEqualTo(bytes("two, rewritten"));
        st.deleteUnit("s1", 0);
        assertThat(st.unitIds("s1")).containsExactly(2L, 300L);
        st.clear("s1");
        assertThat(st.unitIds("s1")).isEmpty();
        assertThat(st.getIndex("s1")).isNull();
    }

    @Test
    void sessionsAreIsolatedEvenWithPrefixCollisionsAndCraftedIds() {
        MemoryStore st = store();
        // "ab" + unit bytes vs "a" + "b..." : a naive concatenated key would collide
        as("ab");
        st.putUnit("ab", 1, bytes("ab-1"));
        st.putIndex("ab", index("ab", 1));
        as("a");
        st.putUnit("a", 1, bytes("a-1"));
        assertThat(st.getUnit("a", 1)).isEqualTo(bytes("a-1"));
        assertThat(st.unitIds("a")).containsExactly(1L);
        assertThat(st.getIndex("a")).isNull();
        // ids crafted from another session's key bytes find nothing
        long crafted = java.nio.ByteBuffer.wrap(new byte[] {0, 0, 0, 2, 'a', 'b', 0, 0})
                .getLong();
        assertThat(st.getUnit("a", crafted)).isNull();
        assertThat(st.getUnit("a", -1)).isNull();
        as("b");
        assertThat(st.unitIds("b")).isEmpty();
        as("ab");
        assertThat(st.getUnit("ab", 1)).isEqualTo(bytes("ab-1"));
        st.clear("ab");
        as("a");
        assertThat(st.getUnit("a", 1)).as("clearing 'ab' leaves 'a'").isEqualTo(bytes("a-1"));
        // an index naming another session is refused
        assertThatThrownBy(() -> st.putIndex("a", index("ab", 1)))
                .isInstanceOf(MemoryStoreException.class)
                .hasMessageContaining("ab");
        assertThatThrownBy(() -> st.putUnit("", 1, bytes("x"))).isInstanceOf(MemoryStoreException.class);
    }
}
