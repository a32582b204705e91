package io.engram.state.store;

import io.engram.schemas.SessionIndex;
import java.util.List;

/**
 * Durable storage of sessions' memory units: encoded KV blocks (see {@link io.engram.state.codec.KvBlockCodec}) and a
 * per-session {@link SessionIndex}. Every call names the session; an implementation must make another session's data
 * unreachable through any argument (ids chosen by input included) and fail with {@link MemoryStoreException} rather
 * than answer for the wrong session.
 *
 * <p>Implementations: {@link io.engram.state.flink.FlinkMemoryStore} (Flink keyed state, used by the job) and
 * {@link io.engram.state.rocksdb.RocksDbMemoryStore} (a RocksDB database of its own, for tools and benchmarks). Both
 * pass {@code MemoryStoreContract}.
 */
public interface MemoryStore {

    void putUnit(String session, long unitId, byte[] bytes);

    /** The unit's bytes, or null when the session has no such unit. */
    byte[] getUnit(String session, long unitId);

    void deleteUnit(String session, long unitId);

    /** Ids of the session's units, ascending. */
    List<Long> unitIds(String session);

    void putIndex(String session, SessionIndex index);

    /** The session's index, or null when the session has no memory. */
    SessionIndex getIndex(String session);

    /** Removes every unit and the index of the session. */
    void clear(String session);
}
