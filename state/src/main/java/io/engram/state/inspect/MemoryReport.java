package io.engram.state.inspect;

import io.engram.schemas.SessionIndex;
import io.engram.state.codec.CorruptMemoryException;
import io.engram.state.codec.KvBlockCodec;
import io.engram.state.store.StoredSession;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What a tool shows of one stored session: the index fields and one row per memory unit, with each unit checked against
 * its own CRC32C and against the checksum the index lists for it. Built from a {@link StoredSession}, whatever store it
 * came from.
 *
 * @param session the session id
 * @param index the session's index, or null when none is stored
 * @param units one row per unit: the index's units in index order, then stored units the index does not list
 */
public record MemoryReport(String session, SessionIndex index, List<Unit> units) {

    /** How a unit compares with its own checksum and with the index. */
    public enum Status {
        /** Its CRC32C matches its bytes and the index lists it with that checksum. */
        OK,
        /** Its bytes do not match its own CRC32C: damaged. */
        CRC_MISMATCH,
        /** Intact, but the index lists another checksum for it: not the version the index refers to. */
        INDEX_MISMATCH,
        /** Stored, but the index does not list it (left over, or the index is missing). */
        NOT_IN_INDEX,
        /** Listed in the index, but not stored. */
        MISSING,
        /** Too short for a header, or of an unknown format version or KV type. */
        UNREADABLE
    }

    /**
     * One memory unit.
     *
     * @param unitId the unit (block) id
     * @param firstSeq sequence index of its first token (-1 when the header could not be read)
     * @param tokens tokens it holds
     * @param bytes encoded size
     * @param dtype how its K/V values are stored, or null when unreadable or missing
     * @param status checksum status
     * @param detail why, for any status but OK; empty otherwise
     */
    public record Unit(long unitId, long firstSeq, int tokens, int bytes, String dtype, Status status, String detail) {}

    /** The report of {@code s}. */
    public static MemoryReport of(StoredSession s) {
        SessionIndex idx = s.index();
        Map<Long, Integer> listed = new HashMap<>();
        List<Unit> rows = new ArrayList<>();
        if (idx != null) {
            for (int i = 0; i < idx.getBlockIds().size(); i++) {
                Integer crc = i < idx.getBlockCrcs().size() ? idx.getBlockCrcs().get(i) : null;
                listed.put(idx.getBlockIds().get(i), crc);
                rows.add(unit(s, idx.getBlockIds().get(i), true, crc));
            }
        }
        for (long id : s.units().keySet()) {
            if (!listed.containsKey(id)) {
                rows.add(unit(s, id, false, null));
            }
        }
        return new MemoryReport(s.session(), idx, List.copyOf(rows));
    }

    private static Unit unit(StoredSession s, long id, boolean inIndex, Integer indexCrc) {
        byte[] bytes = s.units().get(id);
        if (bytes == null) {
            return new Unit(id, -1, 0, 0, null, Status.MISSING, "listed in the index but not stored");
        }
        KvBlockCodec.Header h;
        try {
            h = KvBlockCodec.header(bytes, "unit " + id);
        } catch (CorruptMemoryException e) {
            return new Unit(id, -1, 0, bytes.length, null, Status.UNREADABLE, e.getMessage());
        }
        Status status;
        String detail = "";
        if (!h.checksumOk()) {
            status = Status.CRC_MISMATCH;
            detail = "stored CRC32C %08x does not match the bytes".formatted(h.checksum());
        } else if (!inIndex) {
            status = Status.NOT_IN_INDEX;
            detail = s.index() == null ? "the session has no index" : "the index does not list this unit";
        } else if (indexCrc == null || indexCrc != h.checksum()) {
            status = Status.INDEX_MISMATCH;
            detail = indexCrc == null
                    ? "the index lists no checksum for it"
                    : "the index lists CRC32C %08x, the unit has %08x".formatted(indexCrc, h.checksum());
        } else {
            status = Status.OK;
        }
        if (h.blockId() != id && status == Status.OK) {
            status = Status.INDEX_MISMATCH;
            detail = "stored under id " + id + " but its header says " + h.blockId();
        }
        return new Unit(id, h.firstSeq(), h.length(), bytes.length, h.dtype().name(), status, detail);
    }

    /** Total encoded bytes of the stored units. */
    public long bytes() {
        long n = 0;
        for (Unit u : units) {
            n += u.bytes();
        }
        return n;
    }

    /** Whether every unit is OK and the index lists exactly the stored units. */
    public boolean healthy() {
        return index != null && units.stream().allMatch(u -> u.status() == Status.OK);
    }
}
