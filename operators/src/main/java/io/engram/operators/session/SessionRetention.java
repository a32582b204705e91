package io.engram.operators.session;

import io.engram.engine.attribution.Provenance;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.schemas.DropCause;
import io.engram.schemas.DroppedUnit;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.RetentionPolicy;
import io.engram.schemas.SessionIndex;
import io.engram.state.codec.KvBlockCodec;
import io.engram.state.codec.KvDType;
import io.engram.state.retention.Retention;
import io.engram.state.session.SessionMemoryRepository;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.state.MapState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A session's memory cap for {@link SessionMemoryOperator} ({@link SessionSettings#retention()}): when its stored
 * blocks pass the cap, an episode summary covering everything not summarized yet is emitted first, then blocks are
 * dropped (from keyed state, the working set and the memory) as the retention policy chooses, each leaving a
 * {@link DroppedUnit} with its source events ({@code DROPPED_UNITS}); a session idle for
 * {@link SessionSettings.Retention#idleMillis()} has all of its blocks dropped the same way ({@link #expire}). The
 * keyed-state handles act on the operator's current key: every call is for the session that is the current key.
 */
final class SessionRetention {
    private static final Logger LOG = LoggerFactory.getLogger(SessionRetention.class);

    /** Most recent blocks retention never drops (the local context of the next questions). */
    static final int PROTECTED_BLOCKS = 2;

    private final SessionSettings.Retention retention;
    private final KvDType storage;
    private final SessionMemoryRepository repository;
    private final MapState<Long, DroppedUnit> dropped;
    private final SessionSummaries summaries;

    SessionRetention(
            SessionSettings.Retention retention,
            KvDType storage,
            SessionMemoryRepository repository,
            MapState<Long, DroppedUnit> dropped,
            SessionSummaries summaries) {
        this.retention = retention;
        this.storage = storage;
        this.repository = repository;
        this.dropped = dropped;
        this.summaries = summaries;
    }

    /**
     * Applies the cap after {@code event} was ingested into {@code mem}; {@code updated} (the index about to be stored)
     * and {@code crcs} (block id to checksum) then describe what is left.
     */
    void apply(EngramEvent event, KvCache mem, SessionIndex updated, Map<Long, Integer> crcs) throws Exception {
        if (retention.policy() == RetentionPolicy.KEEP_ALL) {
            return;
        }
        List<Retention.Candidate> candidates = new ArrayList<>();
        for (KvBlock b : mem.blocks()) {
            candidates.add(new Retention.Candidate(
                    b.id(), b.firstSeq(), b.length(), KvBlockCodec.encodedSize(b, mem.kvDim(), storage), meanScore(b)));
        }
        List<Retention.Candidate> drop = Retention.choose(
                candidates, retention.policy(), retention.maxTokens(), retention.maxBytes(), PROTECTED_BLOCKS);
        if (drop.isEmpty()) {
            return;
        }
        String session = event.getSessionId();
        summaries.beforeDrop(event, mem, updated); // the dropped text keeps a summary
        List<KvBlock> blocks = new ArrayList<>(drop.size());
        for (Retention.Candidate c : drop) {
            blocks.add(mem.blockAt(c.firstSeq()));
        }
        long droppedTokens = drop(session, event.getTimestampMs(), mem, updated, crcs, blocks, DropCause.RETENTION);
        LOG.debug(
                "session {}: retention {} dropped {} blocks ({} tokens)",
                session,
                retention.policy(),
                drop.size(),
                droppedTokens);
    }

    /**
     * Drops every block of an idle session's memory {@code mem} (listed by {@code idx}, the current key's index) at
     * processing time {@code atMs}, an episode summary of what was not summarized yet first; the returned index, to be
     * stored, lists no blocks. The session's text provenance, summaries and dropped-unit records stay.
     */
    SessionIndex expire(String session, long atMs, KvCache mem, SessionIndex idx) throws Exception {
        SessionIndex updated = SessionIndex.newBuilder(idx).build();
        summaries.beforeDrop(session, atMs, mem, updated);
        Map<Long, Integer> crcs = SessionMemoryRepository.checksums(idx);
        long tokens = drop(session, atMs, mem, updated, crcs, new ArrayList<>(mem.blocks()), DropCause.IDLE);
        LOG.info(
                "session {}: idle for {} ms, its memory of {} tokens was dropped (summarized first)",
                session,
                retention.idleMillis(),
                tokens);
        return updated;
    }

    /** Drops {@code blocks} of {@code mem}, each leaving a {@link DroppedUnit}; {@code updated} lists what is left. */
    private long drop(
            String session,
            long atMs,
            KvCache mem,
            SessionIndex updated,
            Map<Long, Integer> crcs,
            List<KvBlock> blocks,
            DropCause cause)
            throws Exception {
        long droppedTokens = 0;
        for (KvBlock b : blocks) {
            int firstEvent = -1;
            int lastEvent = -1;
            for (int i = 0; i < b.length(); i++) {
                long tag = b.source(i);
                if (tag != Provenance.NONE) {
                    int ev = Provenance.eventIndex(tag);
                    firstEvent = firstEvent < 0 ? ev : Math.min(firstEvent, ev);
                    lastEvent = Math.max(lastEvent, ev);
                }
            }
            double mean = meanScore(b);
            dropped.put(
                    b.id(),
                    DroppedUnit.newBuilder()
                            .setBlockId(b.id())
                            .setFirstSeq(b.firstSeq())
                            .setTokens(b.length())
                            .setFirstEvent(firstEvent)
                            .setLastEvent(lastEvent)
                            .setMeanScore(Double.isNaN(mean) ? null : (float) mean)
                            .setReason(retention.policy())
                            .setCause(cause)
                            .setSummarizedSeq(updated.getSummarizedSeq())
                            .setDroppedAtMs(atMs)
                            .build());
            repository.delete(session, b.id());
            mem.detach(b);
            mem.unitStore().forget(b);
            crcs.remove(b.id());
            droppedTokens += b.length();
            updated.setNextBlockId(Math.max(updated.getNextBlockId(), b.id() + 1)); // never reused
        }
        List<Long> ids = new ArrayList<>();
        List<Integer> blockCrcs = new ArrayList<>();
        for (KvBlock b : mem.blocks()) {
            ids.add(b.id());
            blockCrcs.add(crcs.get(b.id()));
        }
        updated.setBlockIds(ids);
        updated.setBlockCrcs(blockCrcs);
        updated.setDroppedTokens(updated.getDroppedTokens() + droppedTokens);
        updated.setDroppedUnits(updated.getDroppedUnits() + blocks.size());
        return droppedTokens;
    }

    /** Mean score (surprise) of the block's scored tokens, NaN when none is scored. */
    private static double meanScore(KvBlock b) {
        double sum = 0;
        int n = 0;
        for (int i = 0; i < b.length(); i++) {
            if (!Float.isNaN(b.score(i))) {
                sum += b.score(i);
                n++;
            }
        }
        return n == 0 ? Double.NaN : sum / n;
    }

    /** Forgets the session's dropped units (the session was reset or closed). */
    void clear() {
        dropped.clear();
    }
}
