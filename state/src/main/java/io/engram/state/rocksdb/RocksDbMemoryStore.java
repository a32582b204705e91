package io.engram.state.rocksdb;

import io.engram.schemas.SessionIndex;
import io.engram.state.store.MemoryStore;
import io.engram.state.store.MemoryStoreException;
import io.engram.state.store.SessionKeys;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.DBOptions;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;
import org.rocksdb.WriteBatch;
import org.rocksdb.WriteOptions;

/**
 * A {@link MemoryStore} in a RocksDB database of its own (the {@code org.rocksdb} API of Flink's frocksdbjni 8.10):
 * column family {@code units} keyed by {@link SessionKeys#unitKey}, column family {@code index} keyed by
 * {@link SessionKeys#prefix}. For standalone use, tools and benchmarks; the job uses Flink keyed state.
 *
 * <p>Thread-safe (RocksDB is). Native handles are owned here and closed in {@link #close()} in the order RocksDB needs:
 * column family handles, the database, then the options.
 */
public final class RocksDbMemoryStore implements MemoryStore, AutoCloseable {
    static {
        RocksDB.loadLibrary();
    }

    private final Path dir;
    private final DBOptions dbOptions;
    private final ColumnFamilyOptions cfOptions;
    private final WriteOptions writeOptions;
    private final RocksDB db;
    private final List<ColumnFamilyHandle> handles;
    private final ColumnFamilyHandle units;
    private final ColumnFamilyHandle index;

    private RocksDbMemoryStore(
            Path dir,
            DBOptions dbOptions,
            ColumnFamilyOptions cfOptions,
            RocksDB db,
            List<ColumnFamilyHandle> handles) {
        this.dir = dir;
        this.dbOptions = dbOptions;
        this.cfOptions = cfOptions;
        this.writeOptions = new WriteOptions();
        this.db = db;
        this.handles = handles;
        this.units = handles.get(1);
        this.index = handles.get(2);
    }

    /** Opens (creating if needed) the store in {@code dir}. */
    public static RocksDbMemoryStore open(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new MemoryStoreException("cannot create memory store directory " + dir + ": " + e.getMessage(), e);
        }
        DBOptions dbOptions = new DBOptions().setCreateIfMissing(true).setCreateMissingColumnFamilies(true);
        ColumnFamilyOptions cf = new ColumnFamilyOptions();
        List<ColumnFamilyDescriptor> descriptors = List.of(
                new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY, cf),
                new ColumnFamilyDescriptor("units".getBytes(), cf),
                new ColumnFamilyDescriptor("index".getBytes(), cf));
        List<ColumnFamilyHandle> handles = new ArrayList<>();
        try {
            RocksDB db = RocksDB.open(dbOptions, dir.toString(), descriptors, handles);
            return new RocksDbMemoryStore(dir, dbOptions, cf, db, handles);
        } catch (RocksDBException e) {
            dbOptions.close();
            cf.close();
            throw new MemoryStoreException("cannot open memory store at " + dir + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void putUnit(String session, long unitId, byte[] bytes) {
        try {
            db.put(units, writeOptions, SessionKeys.unitKey(session, unitId), bytes);
        } catch (RocksDBException e) {
            throw fail("writing unit " + unitId, session, e);
        }
    }

    @Override
    public byte[] getUnit(String session, long unitId) {
        try {
            return db.get(units, SessionKeys.unitKey(session, unitId));
        } catch (RocksDBException e) {
            throw fail("reading unit " + unitId, session, e);
        }
    }

    @Override
    public void deleteUnit(String session, long unitId) {
        try {
            db.delete(units, writeOptions, SessionKeys.unitKey(session, unitId));
        } catch (RocksDBException e) {
            throw fail("deleting unit " + unitId, session, e);
        }
    }

    @Override
    public List<Long> unitIds(String session) {
        byte[] prefix = SessionKeys.prefix(session);
        List<Long> ids = new ArrayList<>();
        try (RocksIterator it = db.newIterator(units)) {
            for (it.seek(prefix); it.isValid() && SessionKeys.startsWith(it.key(), prefix); it.next()) {
                ids.add(SessionKeys.unitId(it.key(), prefix.length));
            }
        }
        // big-endian signed ids sort negative after positive in byte order; ids are >= 0 by construction
        return ids;
    }

    @Override
    public void putIndex(String session, SessionIndex idx) {
        if (!session.equals(idx.getSessionId())) {
            throw new MemoryStoreException(
                    "index of session " + idx.getSessionId() + " cannot be stored under session " + session);
        }
        try {
            ByteBuffer b = SessionIndex.getEncoder().encode(idx);
            byte[] v = new byte[b.remaining()];
            b.get(v);
            db.put(index, writeOptions, SessionKeys.prefix(session), v);
        } catch (IOException | RocksDBException e) {
            throw fail("writing the index", session, e);
        }
    }

    @Override
    public SessionIndex getIndex(String session) {
        try {
            byte[] v = db.get(index, SessionKeys.prefix(session));
            if (v == null) {
                return null;
            }
            SessionIndex idx = SessionIndex.getDecoder().decode(v);
            if (!idx.getSessionId().equals(session)) {
                throw new MemoryStoreException("store " + dir + " holds an index of session " + idx.getSessionId()
                        + " under session " + session);
            }
            return idx;
        } catch (IOException | RocksDBException e) {
            throw fail("reading the index", session, e);
        }
    }

    /**
     * Ids of every session with an index in this store, in key order (by UTF-8 length, then bytes). Reads the whole
     * index column family: for tools, not for a per-event path.
     */
    public List<String> sessions() {
        List<String> out = new ArrayList<>();
        try (RocksIterator it = db.newIterator(index)) {
            for (it.seekToFirst(); it.isValid(); it.next()) {
                out.add(SessionKeys.session(it.key()));
            }
        }
        return out;
    }

    @Override
    public void clear(String session) {
        byte[] prefix = SessionKeys.prefix(session);
        try (WriteBatch batch = new WriteBatch()) {
            for (long id : unitIds(session)) {
                batch.delete(units, SessionKeys.unitKey(session, id));
            }
            batch.delete(index, prefix);
            db.write(writeOptions, batch);
        } catch (RocksDBException e) {
            throw fail("clearing", session, e);
        }
    }

    /**
     * Writes a consistent copy of the store to {@code target} (a RocksDB checkpoint: the memtable is flushed and the SST
     * files are hard-linked or copied), which must not exist yet. This is the form Flink's RocksDB backend snapshots.
     */
    public void checkpoint(Path target) {
        try (org.rocksdb.Checkpoint cp = org.rocksdb.Checkpoint.create(db)) {
            cp.createCheckpoint(target.toString());
        } catch (RocksDBException e) {
            throw new MemoryStoreException(
                    "memory store %s: checkpoint to %s failed: %s".formatted(dir, target, e.getMessage()), e);
        }
    }

    private MemoryStoreException fail(String what, String session, Exception e) {
        return new MemoryStoreException(
                "memory store %s: %s of session '%s' failed: %s".formatted(dir, what, session, e.getMessage()), e);
    }

    @Override
    public void close() {
        // order matters: column families, then the database, then options
        handles.forEach(ColumnFamilyHandle::close);
        db.close();
        writeOptions.close();
        dbOptions.close();
        cfOptions.close();
    }
}
