package io.engram.operators.session;

import io.engram.schemas.EngramEvent;
import org.apache.flink.api.common.state.KeyedStateStore;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;

/**
 * The current session's queries waiting to be answered, in arrival order, as a queue in keyed state: queries under
 * consecutive sequence numbers between a head and a tail, so adding or answering one is a constant amount of state work
 * however many wait. Queries parked by a version that kept them as one list ({@link #LEGACY}) move into the queue the
 * first time the session is touched. All calls act on the operator's current key.
 */
final class PendingQueries {
    /** Where versions before the queue kept parked queries (one list, rewritten per answer): read to migrate only. */
    static final ListStateDescriptor<EngramEvent> LEGACY =
            new ListStateDescriptor<>("engram-pending-queries", new AvroTypeInfo<>(EngramEvent.class));

    static final MapStateDescriptor<Long, EngramEvent> QUEUE =
            new MapStateDescriptor<>("engram-pending-query-queue", Types.LONG, new AvroTypeInfo<>(EngramEvent.class));
    static final ValueStateDescriptor<Long> HEAD = new ValueStateDescriptor<>("engram-pending-query-head", Types.LONG);
    static final ValueStateDescriptor<Long> TAIL = new ValueStateDescriptor<>("engram-pending-query-tail", Types.LONG);

    private final ListState<EngramEvent> legacy;
    private final MapState<Long, EngramEvent> queue;
    private final ValueState<Long> head;
    private final ValueState<Long> tail;

    PendingQueries(KeyedStateStore state) {
        this.legacy = state.getListState(LEGACY);
        this.queue = state.getMapState(QUEUE);
        this.head = state.getState(HEAD);
        this.tail = state.getState(TAIL);
    }

    /** Queries waiting. */
    long size() throws Exception {
        migrate();
        return value(tail) - value(head);
    }

    void add(EngramEvent query) throws Exception {
        migrate();
        long t = value(tail);
        queue.put(t, query);
        tail.update(t + 1);
    }

    /** The oldest waiting query, or null. */
    EngramEvent peek() throws Exception {
        migrate();
        long h = value(head);
        return h < value(tail) ? queue.get(h) : null;
    }

    /** Removes the oldest waiting query; returns whether others still wait. */
    boolean poll() throws Exception {
        long h = value(head);
        long t = value(tail);
        if (h >= t) {
            return false;
        }
        queue.remove(h);
        if (h + 1 == t) {
            clear(); // empty: no state left behind
            return false;
        }
        head.update(h + 1);
        return true;
    }

    void clear() {
        legacy.clear();
        queue.clear();
        head.clear();
        tail.clear();
    }

    private void migrate() throws Exception {
        Iterable<EngramEvent> old = legacy.get();
        if (old == null || !old.iterator().hasNext()) {
            return;
        }
        long t = value(tail);
        for (EngramEvent e : old) {
            queue.put(t++, e);
        }
        tail.update(t);
        legacy.clear();
    }

    private static long value(ValueState<Long> s) throws Exception {
        Long v = s.value();
        return v == null ? 0 : v;
    }
}
