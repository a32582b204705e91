package io.engram.operators.session;

import io.engram.engine.kv.KvCache;
import io.engram.schemas.SessionIndex;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The memories of the sessions used last, kept between their events so that the next event of a session starts from
 * the memory as the last one left it: no index walk, no block attached again, no policy state adopted. Without it every
 * event costs work in proportion to the session's length (each stored block attached, or decoded when the working set
 * no longer holds it).
 *
 * <p>An entry is used only while the session's stored index is the one it was kept with (any write that changes the
 * memory, a quarantine or a reset, changes the index), and the session operator forgets it whenever an event fails.
 * The kept memory is the stored form (blocks are turned into their stored form when written), so a session answers the
 * same whether it was hot, warm or restored. Bounded by the bytes of the kept memories' blocks, least recently used
 * first. Not thread-safe: owned by one operator instance.
 */
final class HotSessions {
    private record Hot(SessionIndex index, SessionRepairs.Memory memory, long bytes) {}

    private final long budgetBytes;
    private final LinkedHashMap<String, Hot> hot = new LinkedHashMap<>(16, 0.75f, true);
    private long bytes;
    private long hits;

    HotSessions(long budgetBytes) {
        this.budgetBytes = budgetBytes;
    }

    /** The kept memory of the session when it belongs to {@code stored}, the session's index now; else null. */
    SessionRepairs.Memory get(String session, SessionIndex stored) {
        Hot h = hot.get(session);
        if (h == null) {
            return null;
        }
        if (!h.index().equals(stored)) {
            forget(session);
            return null;
        }
        hits++;
        return h.memory();
    }

    /** Keeps the session's memory as described by {@code index}, just stored. */
    void put(String session, SessionIndex index, KvCache mem, String fingerprint) {
        forget(session);
        long size = (long) mem.blocks().size() * mem.floatsPerBlock() * Float.BYTES;
        if (size > budgetBytes) {
            return;
        }
        hot.put(session, new Hot(index, new SessionRepairs.Memory(mem, fingerprint), size));
        bytes += size;
        Iterator<Map.Entry<String, Hot>> it = hot.entrySet().iterator();
        while (bytes > budgetBytes && it.hasNext()) {
            Map.Entry<String, Hot> e = it.next();
            if (!e.getKey().equals(session)) {
                bytes -= e.getValue().bytes();
                it.remove();
            }
        }
    }

    void forget(String session) {
        Hot h = hot.remove(session);
        if (h != null) {
            bytes -= h.bytes();
        }
    }

    /** Events that started from a kept memory. */
    long hits() {
        return hits;
    }

    int size() {
        return hot.size();
    }
}
