package io.engram.operators.session;

import io.engram.engine.attribution.Segmenter;
import io.engram.engine.kv.KvCache;
import io.engram.engine.session.Reply;
import io.engram.engine.session.SessionEngine;
import io.engram.operators.attribution.AnswerRecords;
import io.engram.operators.attribution.AttributionSettings;
import io.engram.schemas.AnswerTimings;
import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionRequest;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.MemoryStats;
import io.engram.schemas.QueryEvent;
import java.util.List;

/**
 * The records {@link SessionMemoryOperator} emits for an answered query: the {@link io.engram.schemas.Answer} (with
 * citations when the attribution tier cites, and always the memory spans it attended to), the FAST {@link Attribution} and the {@link AttributionRequest} for the
 * precise tier, as {@link SessionSettings#attribution()} asks. Source events are looked up in the session's
 * provenance state, so every call is for the session that is the operator's current key.
 */
final class SessionAnswerRecords {
    /** Tokens before the first segment (BOS) that every precise-tier context starts with, at most. */
    static final int PREAMBLE_TOKENS = 8;

    private final SessionEngine engine;
    private final String modelName;
    private final AttributionSettings attribution;
    private final AnswerRecords.Events events;
    private final io.engram.state.codec.KvDType storage;

    SessionAnswerRecords(
            SessionEngine engine,
            String modelName,
            AttributionSettings attribution,
            AnswerRecords.Events events,
            io.engram.state.codec.KvDType storage) {
        this.storage = storage;
        this.engine = engine;
        this.modelName = modelName;
        this.attribution = attribution;
        this.events = events;
    }

    /** The answer record of query {@code event}, answered over {@code mem} by a batch that took {@code batchMillis}. */
    io.engram.schemas.Answer answer(EngramEvent event, Reply a, KvCache mem, String fingerprint, long batchMillis)
            throws Exception {
        QueryEvent q = (QueryEvent) event.getPayload();
        return io.engram.schemas.Answer.newBuilder()
                .setSessionId(event.getSessionId())
                .setQueryId(q.getQueryId())
                .setQuerySource(event.getSource())
                .setText(a.text())
                .setPromptTokens(a.generation().promptTokens())
                .setMemoryTokens((int) Math.min(Integer.MAX_VALUE, a.memoryTokens()))
                .setGeneratedTokens(a.generation().tokens().length)
                .setTimings(new AnswerTimings(
                        0L,
                        0L,
                        a.generation().prefillNanos() / 1_000_000,
                        a.generation().decodeNanos() / 1_000_000,
                        batchMillis))
                .setModel(modelName)
                .setMemory(new MemoryStats(
                        mem.attachedTokens(),
                        mem.blocks().size(),
                        io.engram.state.codec.KvBlockCodec.encodedSize(mem, storage),
                        fingerprint))
                .setCitations(
                        attribution.tier().cites()
                                ? AnswerRecords.citations(a, events, engine.tokenizer(), attribution.topK())
                                : List.of())
                .setRetrieved(AnswerRecords.retrieved(a, events))
                .setCreatedAtMs(event.getTimestampMs())
                .build();
    }

    /** The FAST attribution of the answer (its scores came with it), or null when the tier writes none. */
    Attribution fast(EngramEvent event, Reply a, long elapsedMs) throws Exception {
        if (!attribution.tier().fastRecord()) {
            return null;
        }
        return AnswerRecords.fast(
                event.getSessionId(),
                ((QueryEvent) event.getPayload()).getQueryId(),
                a,
                events,
                engine.tokenizer(),
                attribution.topK(),
                elapsedMs,
                event.getTimestampMs());
    }

    /**
     * What the PRECISE tier needs to attribute the answer (it runs downstream, so the answer never waits for it), or
     * null when the tier does not run.
     */
    AttributionRequest request(EngramEvent event, Reply a, KvCache mem) throws Exception {
        if (!attribution.tier().precise()) {
            return null;
        }
        QueryEvent q = (QueryEvent) event.getPayload();
        int[] question = engine.questionTokens(q.getQuestion(), a.memoryTokens());
        return AnswerRecords.request(
                event.getSessionId(),
                q.getQueryId(),
                modelName,
                a,
                Segmenter.preamble(mem, PREAMBLE_TOKENS),
                question,
                attribution,
                events,
                engine.tokenizer(),
                event.getTimestampMs());
    }
}
