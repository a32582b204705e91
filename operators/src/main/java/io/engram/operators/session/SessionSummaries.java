package io.engram.operators.session;

import io.engram.engine.generate.SamplingOptions;
import io.engram.engine.generate.TokenListener;
import io.engram.engine.kv.KvCache;
import io.engram.engine.session.SessionEngine;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EventProvenance;
import io.engram.schemas.SessionIndex;
import io.engram.schemas.Summary;
import io.engram.schemas.SummaryKind;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Consumer;
import org.apache.flink.api.common.state.MapState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The summaries of {@link SessionMemoryOperator}: EPISODE summaries as the memory grows (every
 * {@link SessionSettings#summaryIntervalTokens()} tokens, ending where the memory policy's latest episode starts) and
 * before retention drops text, and a SESSION summary on request, built from the stored episode summaries. An EPISODE
 * summary is generated from the text of its span alone ({@link SessionEngine#summarizeSpan}), so what it says comes
 * from the tokens it claims to cover; each summary is handed to {@code out}, and the episode ones are also kept in keyed
 * state ({@code EPISODE_SUMMARIES}). The keyed-state handles act on the operator's current key: every call is for the
 * session that is the current key.
 */
final class SessionSummaries {
    private static final Logger LOG = LoggerFactory.getLogger(SessionSummaries.class);

    private final SessionEngine engine;
    private final SessionSettings settings;
    private final String modelName;
    /** Positions the model takes at most (bounds the text a session summary is built from). */
    private final int maxPositions;

    private final MapState<Integer, EventProvenance> events;
    private final MapState<Long, Summary> episodes;
    private final Consumer<Summary> out;

    SessionSummaries(
            SessionEngine engine,
            SessionSettings settings,
            String modelName,
            int maxPositions,
            MapState<Integer, EventProvenance> events,
            MapState<Long, Summary> episodes,
            Consumer<Summary> out) {
        this.engine = engine;
        this.settings = settings;
        this.modelName = modelName;
        this.maxPositions = maxPositions;
        this.events = events;
        this.episodes = episodes;
        this.out = out;
    }

    /**
     * After event {@code eventIndex} was ingested: an EPISODE summary when at least the interval's tokens lie between
     * the end of the last one and where the next may end; {@code updated} then records what is summarized.
     */
    void afterIngest(EngramEvent event, KvCache mem, SessionIndex updated, int eventIndex) throws Exception {
        int interval = settings.answers().summaryIntervalTokens();
        long cut = cut(mem);
        if (interval > 0 && cut - updated.getSummarizedSeq() >= interval) {
            int lastEvent = eventIndex;
            while (lastEvent > 0 && events.get(lastEvent).getFirstSeq() >= cut) {
                lastEvent--; // the episode ends inside an earlier event
            }
            emit(event.getSessionId(), event.getTimestampMs(), mem, updated, SummaryKind.EPISODE, cut - 1, lastEvent);
            updated.setSummarizedEvents(cut == updated.getNextSeq() ? updated.getEventCount() : lastEvent);
            updated.setSummarizedSeq(cut);
        }
    }

    /** Before retention drops blocks: an EPISODE summary of everything not summarized yet, so the dropped text keeps one. */
    void beforeDrop(EngramEvent event, KvCache mem, SessionIndex updated) throws Exception {
        beforeDrop(event.getSessionId(), event.getTimestampMs(), mem, updated);
    }

    /** {@link #beforeDrop(EngramEvent, KvCache, SessionIndex)} without an event (an idle session, at {@code atMs}). */
    void beforeDrop(String session, long atMs, KvCache mem, SessionIndex updated) throws Exception {
        if (updated.getSummarizedSeq() < updated.getNextSeq()) {
            emit(
                    session,
                    atMs,
                    mem,
                    updated,
                    SummaryKind.EPISODE,
                    updated.getNextSeq() - 1,
                    updated.getEventCount() - 1);
            updated.setSummarizedEvents(updated.getEventCount());
            updated.setSummarizedSeq(updated.getNextSeq());
        }
    }

    /**
     * A SESSION summary on request, covering the session from its start: built from its episode summaries (which
     * outlive the blocks retention drops) and a summary of the text after the last of them; a session without episode
     * summaries is summarized over its memory directly.
     */
    void session(EngramEvent event, KvCache mem, SessionIndex idx) throws Exception {
        List<Summary> stored = new ArrayList<>();
        episodes.values().forEach(stored::add);
        if (stored.isEmpty()) {
            emit(
                    event.getSessionId(),
                    event.getTimestampMs(),
                    mem,
                    idx,
                    SummaryKind.SESSION,
                    idx.getNextSeq() - 1,
                    idx.getEventCount() - 1);
            return;
        }
        stored.sort(Comparator.comparingLong(Summary::getFirstToken));
        List<String> texts = new ArrayList<>();
        for (Summary e : stored) {
            texts.add(e.getText());
        }
        SamplingOptions greedy = SamplingOptions.greedy(settings.answers().summaryMaxTokens());
        if (idx.getSummarizedSeq() < idx.getNextSeq()) {
            texts.add(engine.summarizeSpan(mem, idx.getSummarizedSeq(), idx.getNextSeq(), maxPositions, greedy));
        }
        String text = engine.summarize(texts, maxPositions, greedy);
        out.accept(Summary.newBuilder()
                .setSessionId(event.getSessionId())
                .setKind(SummaryKind.SESSION)
                .setFirstEvent(events.get(0).getSource())
                .setLastEvent(events.get(idx.getEventCount() - 1).getSource())
                .setFirstToken(0L)
                .setLastToken(idx.getNextSeq() - 1)
                .setText(text)
                .setModel(modelName)
                .setCreatedAtMs(event.getTimestampMs())
                .build());
        LOG.debug("session {}: session summary from {} episode summaries", event.getSessionId(), stored.size());
    }

    /** Forgets the session's episode summaries (the session was reset or closed). */
    void clear() {
        episodes.clear();
    }

    /**
     * Where an episode summary may end: with an episodic memory policy (EM-LLM) the start of the latest event it found
     * (boundaries drive summaries), otherwise the end of the stream.
     */
    private long cut(KvCache mem) {
        long boundary = engine.policy().lastEpisodeBoundary(mem);
        return boundary < 0 ? mem.nextSeq() : Math.min(boundary, mem.nextSeq());
    }

    /**
     * A summary up to token {@code lastToken} and event {@code lastEventIndex}. An EPISODE summary covers the tokens and
     * events since the previous one (generated from their text alone, and kept), a SESSION summary the whole session
     * (generated over the whole memory, through the memory policy).
     */
    private void emit(
            String session,
            long atMs,
            KvCache mem,
            SessionIndex idx,
            SummaryKind kind,
            long lastToken,
            int lastEventIndex)
            throws Exception {
        boolean episode = kind == SummaryKind.EPISODE;
        SamplingOptions greedy = SamplingOptions.greedy(settings.answers().summaryMaxTokens());
        String text = episode
                ? engine.summarizeSpan(mem, idx.getSummarizedSeq(), lastToken + 1, maxPositions, greedy)
                : engine.answer(mem, SessionEngine.SUMMARY_INSTRUCTION, greedy, TokenListener.NONE)
                        .text();
        EventProvenance first = events.get(episode ? idx.getSummarizedEvents() : 0);
        EventProvenance last = events.get(Math.max(0, lastEventIndex));
        Summary summary = Summary.newBuilder()
                .setSessionId(session)
                .setKind(kind)
                .setFirstEvent(first.getSource())
                .setLastEvent(last.getSource())
                .setFirstToken(episode ? idx.getSummarizedSeq() : 0L)
                .setLastToken(lastToken)
                .setText(text)
                .setModel(modelName)
                .setCreatedAtMs(atMs)
                .build();
        if (episode) {
            episodes.put(summary.getFirstToken(), summary); // a later session summary is built from these
        }
        out.accept(summary);
    }
}
