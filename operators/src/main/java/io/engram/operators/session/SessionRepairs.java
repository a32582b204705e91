package io.engram.operators.session;

import io.engram.engine.kv.KvCache;
import io.engram.schemas.DropCause;
import io.engram.schemas.DroppedUnit;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.RetentionPolicy;
import io.engram.schemas.SessionIndex;
import io.engram.state.session.SessionMemoryRepository;
import java.util.Map;
import java.util.function.BiConsumer;
import org.apache.flink.api.common.state.MapState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps a session answering when some of its stored blocks are damaged (a flipped byte in a checkpoint, a write cut
 * short by a failure): each block {@link SessionMemoryRepository#load} left out is quarantined, that is removed from
 * the store, recorded as a {@link DroppedUnit} with cause {@code CORRUPT} and both checksums, reported by a dead letter
 * naming the session, block and checksums, and left out of a rewritten index, so it is never served and the session
 * answers from the rest. The keyed-state handle acts on the operator's current key, which must be the session's.
 */
final class SessionRepairs {
    private static final Logger LOG = LoggerFactory.getLogger(SessionRepairs.class);

    /** A session's memory ready for the engine, and the fingerprint of the stored blocks it holds. */
    record Memory(KvCache cache, String fingerprint) {}

    private final SessionMemoryRepository repository;
    private final MapState<Long, DroppedUnit> dropped;
    private final String model;
    private final int blockSize;
    private final BiConsumer<EngramEvent, String> report;

    /** @param report emits a dead letter for the event that found the damage, with the reason */
    SessionRepairs(
            SessionMemoryRepository repository,
            MapState<Long, DroppedUnit> dropped,
            String model,
            int blockSize,
            BiConsumer<EngramEvent, String> report) {
        this.repository = repository;
        this.dropped = dropped;
        this.model = model;
        this.blockSize = blockSize;
        this.report = report;
    }

    /** Quarantines the damaged blocks of {@code loaded} (read for {@code event} from {@code idx}) and rewrites the index. */
    void quarantine(EngramEvent event, SessionIndex idx, SessionMemoryRepository.Loaded loaded) throws Exception {
        String session = event.getSessionId();
        long tokens = 0;
        for (SessionMemoryRepository.DamagedBlock d : loaded.damaged()) {
            dropped.put(
                    d.blockId(),
                    DroppedUnit.newBuilder()
                            .setBlockId(d.blockId())
                            .setFirstSeq(d.firstSeq())
                            .setTokens(d.tokens())
                            .setFirstEvent(-1)
                            .setLastEvent(-1)
                            .setMeanScore(null)
                            .setReason(RetentionPolicy.KEEP_ALL)
                            .setSummarizedSeq(idx.getSummarizedSeq())
                            .setDroppedAtMs(event.getTimestampMs())
                            .setCause(DropCause.CORRUPT)
                            .setIndexCrc(d.indexCrc())
                            .setStoredCrc(d.storedCrc())
                            .build());
            repository.delete(session, d.blockId());
            tokens += d.tokens();
            String reason =
                    "session %s: block %d quarantined (index checksum %08x, stored %s): %s; it is never served again"
                            .formatted(
                                    session,
                                    d.blockId(),
                                    d.indexCrc(),
                                    d.storedCrc() == null ? "none" : "%08x".formatted(d.storedCrc()),
                                    d.reason());
            LOG.error(reason);
            report.accept(event, reason + "; the event itself was processed with the rest of the memory");
        }
        Map<Long, Integer> crcs = SessionMemoryRepository.checksums(idx);
        SessionIndex repaired = SessionMemoryRepository.indexOf(idx, session, loaded.memory(), crcs, model, blockSize)
                .setDroppedTokens(idx.getDroppedTokens() + tokens)
                .setDroppedUnits(idx.getDroppedUnits() + loaded.damaged().size())
                .build();
        repository.saveIndex(session, repaired);
    }
}
