package io.engram.state.cache;

import io.engram.engine.kv.KvBlock;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The hot memory units of one task slot, shared by all its sessions: decoded KV blocks keyed by (session, unit id),
 * evicted least-recently-used first once their bytes exceed the budget. The durable copy is always the store's; an entry
 * here is only ever the decoding of the stored bytes (callers put exactly what they wrote), so a warm cache and a cold
 * restore see the same values.
 *
 * <p>Not thread-safe: owned by one operator instance (task thread).
 */
public final class WorkingSet {
    private record Key(String session, long unit) {}

    private final long budgetBytes;
    private final LinkedHashMap<Key, KvBlock> entries = new LinkedHashMap<>(64, 0.75f, true);
    private final Map<Key, Long> sizes = new java.util.HashMap<>();
    private final Map<String, Long> bytesPerSession = new java.util.HashMap<>();
    private long bytes;
    private long hits;
    private long misses;
    private long evictions;

    public WorkingSet(long budgetBytes) {
        if (budgetBytes < 0) {
            throw new IllegalArgumentException("working-set budget must be >= 0 bytes, got " + budgetBytes);
        }
        this.budgetBytes = budgetBytes;
    }

    /** The cached block, or null (counted as a miss). */
    public KvBlock get(String session, long unit) {
        KvBlock b = entries.get(new Key(Objects.requireNonNull(session), unit));
        if (b == null) {
            misses++;
        } else {
            hits++;
        }
        return b;
    }

    /** Caches {@code block} (replacing an older entry), then evicts down to the budget, never the entry just put. */
    public void put(String session, long unit, KvBlock block, long blockBytes) {
        Key k = new Key(Objects.requireNonNull(session), unit);
        entries.put(k, block);
        Long oldSize = sizes.put(k, blockBytes);
        account(session, blockBytes - (oldSize == null ? 0 : oldSize));
        Iterator<Map.Entry<Key, KvBlock>> it = entries.entrySet().iterator();
        while (bytes > budgetBytes && it.hasNext()) {
            Map.Entry<Key, KvBlock> e = it.next();
            if (e.getKey().equals(k)) {
                continue;
            }
            account(e.getKey().session(), -sizes.remove(e.getKey()));
            it.remove();
            evictions++;
        }
    }

    private void account(String session, long delta) {
        bytes += delta;
        bytesPerSession.merge(session, delta, Long::sum);
        if (bytesPerSession.get(session) <= 0) {
            bytesPerSession.remove(session);
        }
    }

    /** Drops every cached unit of {@code session} (reset, close, or memory that failed its checks). */
    public void invalidate(String session) {
        Iterator<Map.Entry<Key, KvBlock>> it = entries.entrySet().iterator();
        while (it.hasNext()) {
            Key k = it.next().getKey();
            if (k.session().equals(session)) {
                bytes -= sizes.remove(k);
                it.remove();
            }
        }
        bytesPerSession.remove(session);
    }

    public long bytes() {
        return bytes;
    }

    public long bytes(String session) {
        return bytesPerSession.getOrDefault(session, 0L);
    }

    public int size() {
        return entries.size();
    }

    public long hits() {
        return hits;
    }

    public long misses() {
        return misses;
    }

    public long evictions() {
        return evictions;
    }
}
