package io.engram.state.store;

import io.engram.schemas.SessionIndex;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Everything stored for one session, as read by a tool: its index and its encoded memory units. Not a hot-path type: it
 * holds the whole session in memory.
 *
 * @param session the session id (the key it was stored under)
 * @param index the session's index, or null when units are stored without one (a damaged or half-cleared session)
 * @param units encoded units by id (see {@link io.engram.state.codec.KvBlockCodec}), ascending; unmodifiable
 */
public record StoredSession(String session, SessionIndex index, SortedMap<Long, byte[]> units) {

    public StoredSession {
        if (session == null || session.isEmpty()) {
            throw new IllegalArgumentException("a session id is required");
        }
        units = Collections.unmodifiableSortedMap(new TreeMap<>(units));
    }

    /** Reads {@code session} from {@code store}; null when the store has neither an index nor units for it. */
    public static StoredSession read(MemoryStore store, String session) {
        SessionIndex idx = store.getIndex(session);
        SortedMap<Long, byte[]> units = new TreeMap<>();
        for (long id : store.unitIds(session)) {
            units.put(id, store.getUnit(session, id));
        }
        return idx == null && units.isEmpty() ? null : new StoredSession(session, idx, units);
    }

    /** Total bytes of the encoded units. */
    public long unitBytes() {
        long n = 0;
        for (byte[] b : units.values()) {
            n += b.length;
        }
        return n;
    }

    /** Whether {@code other} stores the same index and byte-identical units. */
    public boolean sameContent(StoredSession other) {
        if (!session.equals(other.session)
                || !java.util.Objects.equals(index, other.index)
                || !units.keySet().equals(other.units.keySet())) {
            return false;
        }
        for (Map.Entry<Long, byte[]> e : units.entrySet()) {
            if (!Arrays.equals(e.getValue(), other.units.get(e.getKey()))) {
                return false;
            }
        }
        return true;
    }

    /** The sessions of {@code all} by id. */
    public static Map<String, StoredSession> byId(List<StoredSession> all) {
        Map<String, StoredSession> out = new TreeMap<>();
        for (StoredSession s : all) {
            out.put(s.session(), s);
        }
        return out;
    }
}
