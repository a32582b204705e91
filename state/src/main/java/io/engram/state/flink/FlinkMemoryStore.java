package io.engram.state.flink;

import io.engram.schemas.SessionIndex;
import io.engram.state.store.MemoryStore;
import io.engram.state.store.MemoryStoreException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.apache.flink.api.common.state.KeyedStateStore;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;

/**
 * A {@link MemoryStore} on Flink keyed state (RocksDB-backed in the job): {@code MapState<unit id, bytes>} and
 * {@code ValueState<SessionIndex>} of the key being processed. Flink scopes keyed state to the current key, so the
 * store refuses any call whose session is not that key: no argument can reach another session's state.
 *
 * <p>Valid only on the task thread of the operator that created it, while a key is set.
 */
public final class FlinkMemoryStore implements MemoryStore {
    /** State names are part of savepoints: never rename. */
    public static final ValueStateDescriptor<SessionIndex> INDEX =
            new ValueStateDescriptor<>("engram-session-index", new AvroTypeInfo<>(SessionIndex.class));

    public static final MapStateDescriptor<Long, byte[]> UNITS = new MapStateDescriptor<>(
            "engram-kv-blocks", Types.LONG, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);

    private final ValueState<SessionIndex> index;
    private final MapState<Long, byte[]> units;
    private final Supplier<Object> currentKey;
    private final java.util.function.Consumer<Object> setCurrentKey;

    /**
     * @param currentKey the key the operator is processing (e.g. {@code AbstractStreamOperator::getCurrentKey})
     */
    public FlinkMemoryStore(KeyedStateStore state, Supplier<Object> currentKey) {
        this(state, currentKey, null);
    }

    /**
     * @param setCurrentKey moves the operator's current key (e.g. {@code AbstractStreamOperator::setCurrentKey}), or
     *     null: with it, {@link #getUnit} of a session other than the current key reads under that session's key and
     *     moves the key back (a batch of answers across sessions brings each session's offloaded layers back while
     *     another session's key is set); every other call still refuses any session but the current key
     */
    public FlinkMemoryStore(
            KeyedStateStore state, Supplier<Object> currentKey, java.util.function.Consumer<Object> setCurrentKey) {
        this.index = state.getState(INDEX);
        this.units = state.getMapState(UNITS);
        this.currentKey = currentKey;
        this.setCurrentKey = setCurrentKey;
    }

    private void check(String session) {
        Object key = currentKey.get();
        if (session == null || !session.equals(key)) {
            throw new MemoryStoreException("keyed state of session '" + key + "' was asked for session '" + session
                    + "'; a session's memory is reachable only while that session is processed");
        }
    }

    @Override
    public void putUnit(String session, long unitId, byte[] bytes) {
        check(session);
        try {
            units.put(unitId, bytes);
        } catch (Exception e) {
            throw new MemoryStoreException(
                    "keyed state: writing unit " + unitId + " of session '" + session + "' failed: " + e, e);
        }
    }

    @Override
    public byte[] getUnit(String session, long unitId) {
        Object key = currentKey.get();
        if (setCurrentKey != null && session != null && !session.equals(key)) {
            setCurrentKey.accept(session); // read the session's own state under its own key
            try {
                return getUnit(session, unitId);
            } finally {
                setCurrentKey.accept(key);
            }
        }
        check(session);
        try {
            return units.get(unitId);
        } catch (Exception e) {
            throw new MemoryStoreException(
                    "keyed state: reading unit " + unitId + " of session '" + session + "' failed: " + e, e);
        }
    }

    @Override
    public void deleteUnit(String session, long unitId) {
        check(session);
        try {
            units.remove(unitId);
        } catch (Exception e) {
            throw new MemoryStoreException(
                    "keyed state: deleting unit " + unitId + " of session '" + session + "' failed: " + e, e);
        }
    }

    @Override
    public List<Long> unitIds(String session) {
        check(session);
        try {
            List<Long> ids = new ArrayList<>();
            Iterable<Long> keys = units.keys();
            if (keys != null) {
                keys.forEach(ids::add);
            }
            ids.sort(null);
            return ids;
        } catch (Exception e) {
            throw new MemoryStoreException("keyed state: listing units of session '" + session + "' failed: " + e, e);
        }
    }

    @Override
    public void putIndex(String session, SessionIndex idx) {
        check(session);
        if (!session.equals(idx.getSessionId())) {
            throw new MemoryStoreException(
                    "index of session " + idx.getSessionId() + " cannot be stored under session " + session);
        }
        try {
            index.update(idx);
        } catch (Exception e) {
            throw new MemoryStoreException(
                    "keyed state: writing the index of session '" + session + "' failed: " + e, e);
        }
    }

    @Override
    public SessionIndex getIndex(String session) {
        check(session);
        try {
            return index.value();
        } catch (Exception e) {
            throw new MemoryStoreException(
                    "keyed state: reading the index of session '" + session + "' failed: " + e, e);
        }
    }

    @Override
    public void clear(String session) {
        check(session);
        index.clear();
        units.clear();
    }
}
