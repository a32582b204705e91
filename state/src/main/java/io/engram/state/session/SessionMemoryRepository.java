package io.engram.state.session;

import io.engram.engine.backend.Backend;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.schemas.SessionIndex;
import io.engram.state.cache.WorkingSet;
import io.engram.state.codec.CorruptMemoryException;
import io.engram.state.codec.KvBlockCodec;
import io.engram.state.codec.KvDType;
import io.engram.state.store.MemoryStore;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import java.util.zip.CRC32C;

/**
 * The stored memory of the sessions one engine serves: each session's {@link SessionIndex} and its KV blocks (encoded
 * by {@link KvBlockCodec}, each listed in the index with its checksum) in a {@link MemoryStore}, and the decoded blocks
 * recently used in a {@link WorkingSet}. The store is the truth; the working set only saves decoding.
 *
 * <p>An event's changes are written together at its end ({@link #encode} first, which may fail without writing, then
 * {@link #write} and {@link #saveIndex}); {@link #writes()} counts store writes so a caller whose event failed can tell
 * whether the stored memory may have changed under it.
 *
 * <p>A block the index lists but that is missing, fails its checksum or does not decode is never served: {@link #load}
 * leaves it out and reports it as a {@link DamagedBlock}, and the rest of the session's memory stays usable.
 */
public final class SessionMemoryRepository {

    /**
     * A block the index lists that cannot be used.
     *
     * @param blockId the block's id
     * @param indexCrc the checksum the index lists for it
     * @param storedCrc the checksum the stored bytes carry, or null when the block is missing
     * @param firstSeq its first token's sequence index from its header, or -1 when unreadable
     * @param tokens tokens its header says it holds, or 0 when unreadable
     * @param reason what is wrong, in words
     */
    public record DamagedBlock(
            long blockId, int indexCrc, Integer storedCrc, long firstSeq, int tokens, String reason) {}

    /**
     * A session's memory as loaded.
     *
     * @param memory the blocks that passed their checks, attached in sequence order
     * @param fingerprint CRC32C over the checksums of the attached blocks (see {@code MemoryStats.fingerprint})
     * @param damaged blocks left out
     */
    public record Loaded(KvCache memory, String fingerprint, List<DamagedBlock> damaged) {}

    /** A block encoded for storage, not written yet. */
    public record Encoded(KvBlock block, byte[] bytes, int crc) {}

    private final boolean lazy;
    private final MemoryStore store;
    private final WorkingSet workingSet;
    private final Backend backend;
    private final Supplier<KvCache> blank;
    private final KvDType storage;
    private final String model;
    private final int blockSize;
    private long writes;

    /**
     * @param blank a new empty memory of the engine's shape
     * @param storage how blocks keep their values
     * @param model the model the memory must have been built with
     * @param blockSize tokens per block the memory must have been built with
     */
    public SessionMemoryRepository(
            MemoryStore store,
            WorkingSet workingSet,
            Backend backend,
            Supplier<KvCache> blank,
            KvDType storage,
            String model,
            int blockSize) {
        this(store, workingSet, backend, blank, storage, model, blockSize, false);
    }

    /**
     * @param lazy whether {@link #load} reads full blocks' tokens and provenance only, their layers decoded from the
     *     store when a step needs them (for memory policies that attend to a bounded part of the memory); the
     *     block being appended to is always decoded whole
     */
    public SessionMemoryRepository(
            MemoryStore store,
            WorkingSet workingSet,
            Backend backend,
            Supplier<KvCache> blank,
            KvDType storage,
            String model,
            int blockSize,
            boolean lazy) {
        this.lazy = lazy;
        this.store = store;
        this.workingSet = workingSet;
        this.backend = backend;
        this.blank = blank;
        this.storage = storage;
        this.model = model;
        this.blockSize = blockSize;
    }

    /** The session's index, or null when it has no memory. */
    public SessionIndex index(String session) {
        return store.getIndex(session);
    }

    /** An empty memory for a new session, whose offloaded layers are kept until the event's blocks are written. */
    public KvCache create(String session) {
        KvCache mem = blank.get();
        mem.unitStore(new StoredUnitStore(session, store, mem));
        return mem;
    }

    /**
     * The session's memory as {@code idx} lists it.
     *
     * @throws CorruptMemoryException when the index itself is inconsistent (another session's, or its lists disagree)
     * @throws IncompatibleMemoryException when it was built with another model or block size
     */
    public Loaded load(String session, SessionIndex idx) {
        if (!idx.getSessionId().equals(session)) {
            throw new CorruptMemoryException("index of session " + idx.getSessionId() + " found under key " + session);
        }
        if (!idx.getModel().equals(model) || idx.getBlockSize() != blockSize) {
            throw new IncompatibleMemoryException(
                    "session memory was built with model %s (block %d); this job runs %s (block %d)"
                            .formatted(idx.getModel(), idx.getBlockSize(), model, blockSize));
        }
        List<Long> ids = idx.getBlockIds();
        if (idx.getBlockCrcs().size() != ids.size()) {
            throw new CorruptMemoryException("session " + session + ": index lists " + ids.size() + " blocks but "
                    + idx.getBlockCrcs().size() + " checksums");
        }
        KvCache mem = create(session);
        List<DamagedBlock> damaged = new ArrayList<>();
        List<Integer> attached = new ArrayList<>(ids.size());
        for (int i = 0; i < ids.size(); i++) {
            long id = ids.get(i);
            int want = idx.getBlockCrcs().get(i);
            KvBlock b = workingSet.get(session, id);
            if (b == null) {
                b = read(session, id, want, mem, damaged);
                if (b == null) {
                    mem.skipBlockId(id); // never reused: its id stays the damaged block's in the records
                    continue;
                }
            }
            mem.attach(b);
            units(mem).persisted(b);
            attached.add(want);
        }
        if (idx.getNextBlockId() > 0) {
            mem.skipBlockId(idx.getNextBlockId() - 1); // ids of dropped blocks are never reused
        }
        mem.resumeAt(idx.getNextSeq());
        return new Loaded(mem, fingerprint(attached), List.copyOf(damaged));
    }

    /**
     * An index of {@code mem}'s attached blocks (with their checksums from {@code crcs}), carrying over the counters of
     * {@code previous} (null for a new session).
     */
    public static SessionIndex.Builder indexOf(
            SessionIndex previous, String session, KvCache mem, Map<Long, Integer> crcs, String model, int blockSize) {
        List<Long> ids = new ArrayList<>();
        List<Integer> blockCrcs = new ArrayList<>();
        for (KvBlock b : mem.blocks()) {
            ids.add(b.id());
            blockCrcs.add(crcs.get(b.id()));
        }
        return SessionIndex.newBuilder()
                .setSessionId(session)
                .setNextSeq(mem.nextSeq())
                .setBlockIds(ids)
                .setBlockCrcs(blockCrcs)
                .setEventCount(previous == null ? 0 : previous.getEventCount())
                .setModel(model)
                .setBlockSize(blockSize)
                .setSummarizedEvents(previous == null ? 0 : previous.getSummarizedEvents())
                .setSummarizedSeq(previous == null ? 0 : previous.getSummarizedSeq())
                .setDroppedTokens(previous == null ? 0 : previous.getDroppedTokens())
                .setDroppedUnits(previous == null ? 0 : previous.getDroppedUnits())
                .setNextBlockId(Math.max(mem.nextBlockId(), previous == null ? 0 : previous.getNextBlockId()));
    }

    private static StoredUnitStore units(KvCache mem) {
        return (StoredUnitStore) mem.unitStore();
    }

    /** The memory fingerprint of blocks with these checksums, in sequence order: CRC32C over the checksums. */
    public static String fingerprint(List<Integer> blockCrcs) {
        CRC32C fingerprint = new CRC32C();
        for (int crc : blockCrcs) {
            fingerprint.update(ByteBuffer.allocate(4).putInt(crc).array());
        }
        return "%08x".formatted(fingerprint.getValue());
    }

    /** The stored block decoded and put in the working set, or null (and an entry in {@code damaged}) when unusable. */
    private KvBlock read(String session, long id, int want, KvCache mem, List<DamagedBlock> damaged) {
        String what = "session " + session + " block " + id;
        byte[] bytes = store.getUnit(session, id);
        if (bytes == null) {
            damaged.add(new DamagedBlock(id, want, null, -1, 0, what + " is listed in the index but missing"));
            return null;
        }
        KvBlockCodec.Header h;
        try {
            h = KvBlockCodec.header(bytes, what);
        } catch (CorruptMemoryException e) {
            damaged.add(new DamagedBlock(
                    id, want, bytes.length >= 4 ? KvBlockCodec.checksum(bytes) : null, -1, 0, e.getMessage()));
            return null;
        }
        if (h.checksum() != want || !h.checksumOk()) {
            damaged.add(new DamagedBlock(
                    id,
                    want,
                    h.checksum(),
                    h.firstSeq(),
                    h.length(),
                    what
                            + (h.checksumOk()
                                    ? " is not the version the index lists"
                                    : " does not match its own checksum")));
            return null;
        }
        try {
            KvBlock b = lazy && h.length() == h.capacity()
                    ? KvBlockCodec.decodeMeta(bytes, mem, what)
                    : KvBlockCodec.decode(bytes, mem, backend, what);
            workingSet.put(session, id, b, bytes.length);
            return b;
        } catch (CorruptMemoryException e) {
            damaged.add(new DamagedBlock(id, want, h.checksum(), h.firstSeq(), h.length(), e.getMessage()));
            return null;
        }
    }

    /** Block id to checksum, as {@code idx} lists them (empty for a new session). */
    public static Map<Long, Integer> checksums(SessionIndex idx) {
        Map<Long, Integer> crcs = new HashMap<>();
        if (idx != null) {
            for (int i = 0;
                    i < Math.min(idx.getBlockIds().size(), idx.getBlockCrcs().size());
                    i++) {
                crcs.put(idx.getBlockIds().get(i), idx.getBlockCrcs().get(i));
            }
        }
        return crcs;
    }

    /**
     * Encodes {@code blocks} for storage without writing anything: layers the policy offloaded come back first, as
     * every layer is stored.
     */
    public List<Encoded> encode(KvCache mem, Collection<KvBlock> blocks) {
        List<Encoded> out = new ArrayList<>(blocks.size());
        for (KvBlock b : blocks) {
            for (int l = 0; l < b.layers(); l++) {
                mem.ensureResident(b, l);
            }
            byte[] bytes = KvBlockCodec.encode(b, backend, mem.kvDim(), storage);
            out.add(new Encoded(b, bytes, KvBlockCodec.checksum(bytes)));
        }
        return out;
    }

    /**
     * Writes an encoded block if it is still attached to {@code mem} (retention may have dropped it since it was
     * encoded), turns the attached block into its stored form and keeps it in the working set, so warm, hot (the same
     * memory reused for the next event) and restored runs attend to the same (e.g. BF16-rounded) values.
     */
    public void write(String session, KvCache mem, Encoded e) {
        boolean attached = false;
        for (KvBlock b : mem.blocks()) {
            attached |= b == e.block();
        }
        if (!attached) {
            return;
        }
        writes++;
        store.putUnit(session, e.block().id(), e.bytes());
        mem.overwrite(
                e.block(),
                KvBlockCodec.decode(
                        e.bytes(),
                        blank.get(),
                        backend,
                        "session " + session + " block " + e.block().id()));
        if (mem.unitStore() instanceof StoredUnitStore units) {
            units.persisted(e.block());
        }
        workingSet.put(session, e.block().id(), e.block(), e.bytes().length);
    }

    /** Removes one block of the session from the store and the working set. */
    public void delete(String session, long blockId) {
        writes++;
        store.deleteUnit(session, blockId);
        workingSet.invalidate(session);
    }

    public void saveIndex(String session, SessionIndex idx) {
        writes++;
        store.putIndex(session, idx);
    }

    /** Drops the session's decoded blocks (after a failed event, whose blocks may differ from what is stored). */
    public void invalidate(String session) {
        workingSet.invalidate(session);
    }

    /** Removes everything stored for the session. */
    public void clear(String session) {
        writes++;
        store.clear(session);
        workingSet.invalidate(session);
    }

    /** Store writes so far (puts, deletes, index saves, clears). */
    public long writes() {
        return writes;
    }

    public WorkingSet workingSet() {
        return workingSet;
    }

    public KvDType storage() {
        return storage;
    }
}
