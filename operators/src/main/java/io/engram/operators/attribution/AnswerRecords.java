package io.engram.operators.attribution;

import io.engram.engine.attribution.Candidates;
import io.engram.engine.attribution.Segment;
import io.engram.engine.session.Reply;
import io.engram.engine.tokenizer.Tokenizer;
import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionCandidate;
import io.engram.schemas.AttributionMethod;
import io.engram.schemas.AttributionRequest;
import io.engram.schemas.Citation;
import io.engram.schemas.EventProvenance;
import io.engram.schemas.SourceSegment;
import io.engram.state.codec.CorruptMemoryException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Turns the engine's attribution results into records: citations on an answer, the FAST attribution record, and the
 * request the precise tier works from. A segment's source (topic, partition, offset, event id) comes from the
 * session's event provenance; its char span is clamped to the event's text, and its excerpt is its tokens decoded.
 */
public final class AnswerRecords {
    /** Excerpts longer than this are cut (with an ellipsis) for display. */
    static final int MAX_EXCERPT_CHARS = 1000;

    private AnswerRecords() {}

    /** The provenance of a session's event by index, from keyed state. */
    @FunctionalInterface
    public interface Events {
        EventProvenance get(int eventIndex) throws Exception;
    }

    /** The source segment record of {@code seg} with a score and a 1-based rank (0: unranked). */
    public static SourceSegment segment(Segment seg, Events events, Tokenizer tokenizer, double score, int rank)
            throws Exception {
        EventProvenance p = events.get(seg.eventIndex());
        if (p == null) {
            throw new CorruptMemoryException("memory holds event " + seg.eventIndex() + " which has no provenance");
        }
        String text = tokenizer.decode(seg.tokens(), true).strip();
        if (text.length() > MAX_EXCERPT_CHARS) {
            text = text.substring(0, MAX_EXCERPT_CHARS - 1) + "\u2026";
        }
        int start = Math.min(seg.charStart(), p.getCharLength());
        return SourceSegment.newBuilder()
                .setSource(p.getSource())
                .setEventId(p.getEventId())
                .setCharStart(start)
                .setCharEnd(Math.max(start, Math.min(seg.charEnd(), p.getCharLength())))
                .setExcerpt(text)
                .setScore(score)
                .setRank(rank)
                .build();
    }

    /** The fast tier's best segments as source segments, ranked from 1. */
    static List<SourceSegment> fastSegments(Reply a, Events events, Tokenizer tokenizer, int topK) throws Exception {
        List<SourceSegment> out = new ArrayList<>();
        for (io.engram.engine.session.AttendedSegment c : a.citations()) {
            if (out.size() == topK) {
                break;
            }
            out.add(segment(a.segments().get(c.segment()), events, tokenizer, c.score(), out.size() + 1));
        }
        return out;
    }

    /** Citations for the answer record: the fast tier's best segments, markers [1], [2], ... */
    public static List<Citation> citations(Reply a, Events events, Tokenizer tokenizer, int topK) throws Exception {
        List<Citation> out = new ArrayList<>();
        for (SourceSegment s : fastSegments(a, events, tokenizer, topK)) {
            out.add(new Citation("[" + s.getRank() + "]", s));
        }
        return out;
    }

    /**
     * The memory spans the answer attended to, each with the Kafka coordinates of the events its tokens came from (the
     * session's event provenance, as for citations; events recorded without coordinates are left out).
     */
    public static List<io.engram.schemas.RetrievedSpan> retrieved(Reply a, Events events) throws Exception {
        List<io.engram.schemas.RetrievedSpan> out =
                new ArrayList<>(a.retrieved().size());
        java.util.Map<Integer, io.engram.schemas.SourceCoordinates> sources =
                new java.util.HashMap<>(); // neighbours share events
        for (io.engram.engine.session.RetrievedSpan sp : a.retrieved()) {
            List<io.engram.schemas.SourceCoordinates> coords =
                    new ArrayList<>(sp.eventIndices().size());
            for (int ev : sp.eventIndices()) {
                if (!sources.containsKey(ev)) {
                    EventProvenance p = events.get(ev);
                    if (p == null) {
                        throw new CorruptMemoryException("memory holds event " + ev + " which has no provenance");
                    }
                    sources.put(ev, p.getSource()); // null for an event that came without Kafka coordinates
                }
                if (sources.get(ev) != null) {
                    coords.add(sources.get(ev));
                }
            }
            out.add(new io.engram.schemas.RetrievedSpan(sp.firstSeq(), sp.endSeq(), sp.layers(), coords));
        }
        return out;
    }

    /** The FAST attribution record of an answer. */
    public static Attribution fast(
            String session,
            String queryId,
            Reply a,
            Events events,
            Tokenizer tokenizer,
            int topK,
            long elapsedMs,
            long createdAtMs)
            throws Exception {
        return Attribution.newBuilder()
                .setSessionId(session)
                .setQueryId(queryId)
                .setMethod(AttributionMethod.FAST)
                .setSegments(fastSegments(a, events, tokenizer, topK))
                .setElapsedMs(elapsedMs)
                .setCreatedAtMs(createdAtMs)
                .build();
    }

    /**
     * What the precise tier needs for an answer: candidates pre-filtered by fast and lexical score within the budgets, with their
     * tokens, the question's and answer's tokens, and the preamble.
     */
    public static AttributionRequest request(
            String session,
            String queryId,
            String model,
            Reply a,
            int[] preamble,
            int[] question,
            AttributionSettings s,
            Events events,
            Tokenizer tokenizer,
            long createdAtMs)
            throws Exception {
        List<AttributionCandidate> cands = new ArrayList<>();
        for (Segment seg : Candidates.select(
                a.segments(),
                a.segmentScores(),
                question,
                a.generation().tokens(),
                s.maxCandidates(),
                s.maxContextTokens())) {
            cands.add(AttributionCandidate.newBuilder()
                    .setSegment(segment(seg, events, tokenizer, a.segmentScores()[seg.index()], 0))
                    .setSegmentIndex(seg.index())
                    .setEventIndex(seg.eventIndex())
                    .setFirstSeq(seg.firstSeq())
                    .setTokens(ints(seg.tokens()))
                    .build());
        }
        cands.sort(Comparator.comparingInt(AttributionCandidate::getSegmentIndex));
        return AttributionRequest.newBuilder()
                .setSessionId(session)
                .setQueryId(queryId)
                .setModel(model)
                .setPreambleTokens(ints(preamble))
                .setQuestionTokens(ints(question))
                .setAnswerTokens(ints(a.generation().tokens()))
                .setCandidates(cands)
                .setCreatedAtMs(createdAtMs)
                .build();
    }

    static List<Integer> ints(int[] a) {
        List<Integer> out = new ArrayList<>(a.length);
        for (int v : a) {
            out.add(v);
        }
        return out;
    }

    static int[] ints(List<Integer> a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i);
        }
        return out;
    }
}
