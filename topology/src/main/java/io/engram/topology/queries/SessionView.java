package io.engram.topology.queries;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.Citation;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.RetrievedSpan;
import io.engram.schemas.SourceCoordinates;
import io.engram.schemas.SourceSegment;
import io.engram.schemas.Summary;
import io.engram.schemas.SummaryKind;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The web view's model of one session ({@code GET /api/sessions/{id}}), derived from {@link SessionData}: the
 * session's source text (its content events, numbered 0.. in topic order), the episodes its summaries cover, and its
 * answers with their citations and attributions, each segment mapped onto the content event it points at.
 *
 * <p>The memory map is drawn over the stream of content events: episodes are the ranges of events the EPISODE summaries
 * cover (with their token ranges), and for each answer the events its citations (and attributions) point at, plus the
 * episodes holding them, and the events its retrieved memory spans came from ({@code Answer.retrieved}: the units the
 * memory policy let the answer attend to, each with its token range and layer count; answers written before that field
 * have none).
 *
 * <p>Field names are snake_case like the Avro records'; records appear as {@link AvroJson} writes them. Pure function
 * of its input.
 */
public final class SessionView {

    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private SessionView() {}

    public static ObjectNode toJson(SessionData data) {
        List<EngramEvent> content = new ArrayList<>();
        Map<String, QueryEvent> queriesBySource = new HashMap<>();
        Map<String, QueryEvent> queriesById = new HashMap<>();
        List<EngramEvent> queries = new ArrayList<>();
        ArrayNode controls = NODES.arrayNode();
        for (EngramEvent e : data.events()) {
            switch (e.getPayload()) {
                case ContentEvent c -> content.add(e);
                case QueryEvent q -> {
                    queries.add(e);
                    queriesBySource.put(coordinates(e.getSource()), q);
                    queriesById.put(q.getQueryId(), q);
                }
                case ControlEvent c ->
                    controls.add(NODES.objectNode()
                            .put("action", c.getAction().name())
                            .put("before_event", content.size())
                            .set("source", AvroJson.toJson(e.getSource())));
                default -> {} // a payload newer than this reader: not shown
            }
        }
        Map<String, Integer> eventIndex = new HashMap<>();
        for (int i = 0; i < content.size(); i++) {
            eventIndex.put(coordinates(content.get(i).getSource()), i);
        }

        ObjectNode view = NODES.objectNode();
        view.put("session_id", data.sessionId());
        view.put("truncated", data.truncated()); // older records left out: numbering starts at the first one shown
        long oldest = data.events().isEmpty() || data.events().getFirst().getSource() == null
                ? -1
                : data.events().getFirst().getSource().getOffset();
        if (data.truncated() && oldest >= 0) {
            view.put("next_before", oldest); // ?before= of the next older page
        } else {
            view.putNull("next_before");
        }
        if (data.latestSummary() == null) {
            view.set("latest_summary", NODES.nullNode());
        } else {
            ObjectNode latest = AvroJson.toJson(data.latestSummary());
            latest.put(
                    "first_event_index",
                    eventIndex.getOrDefault(coordinates(data.latestSummary().getFirstEvent()), -1));
            latest.put(
                    "last_event_index",
                    eventIndex.getOrDefault(coordinates(data.latestSummary().getLastEvent()), -1));
            view.set("latest_summary", latest);
        }
        view.set(
                "memory",
                data.answers().isEmpty()
                        ? NODES.nullNode()
                        : AvroJson.toJson(data.answers().getLast().getMemory()));
        view.set("events", events(content));
        view.set("controls", controls);
        List<int[]> episodeRanges = new ArrayList<>();
        view.set("episodes", episodes(data.summaries(), eventIndex, episodeRanges));

        Set<String> answered = new HashSet<>();
        ArrayNode answers = NODES.arrayNode();
        for (Answer a : data.answers()) {
            answered.add(a.getQueryId());
            QueryEvent q =
                    queriesBySource.getOrDefault(coordinates(a.getQuerySource()), queriesById.get(a.getQueryId()));
            List<Attribution> attributions = data.attributions().stream()
                    .filter(t -> t.getQueryId().equals(a.getQueryId()))
                    .toList();
            answers.add(answer(a, q, attributions, eventIndex, episodeRanges, content));
        }
        view.set("answers", answers);
        ArrayNode pending = NODES.arrayNode();
        for (EngramEvent e : queries) {
            QueryEvent q = (QueryEvent) e.getPayload();
            if (!answered.contains(q.getQueryId())) {
                pending.add(NODES.objectNode()
                        .put("query_id", q.getQueryId())
                        .put("question", q.getQuestion())
                        .set("source", AvroJson.toJson(e.getSource())));
            }
        }
        view.set("pending", pending);
        return view;
    }

    private static ArrayNode events(List<EngramEvent> content) {
        ArrayNode out = NODES.arrayNode();
        long chars = 0;
        for (int i = 0; i < content.size(); i++) {
            EngramEvent e = content.get(i);
            ContentEvent c = (ContentEvent) e.getPayload();
            ObjectNode n = NODES.objectNode()
                    .put("index", i)
                    .put("event_id", e.getEventId())
                    .put("kind", c.getKind().name())
                    .put("text", c.getText())
                    .put("timestamp_ms", e.getTimestampMs())
                    .put("stream_char_start", chars);
            n.set("source", AvroJson.toJson(e.getSource()));
            n.put("role", c.getRole());
            n.put("speaker", c.getSpeaker());
            n.put("document_id", c.getDocumentId());
            n.put("chunk_index", c.getChunkIndex());
            chars += c.getText().length();
            out.add(n);
        }
        return out;
    }

    /** Every summary, with the content events it covers; fills {@code ranges} with [first, last] of the EPISODE ones. */
    private static ArrayNode episodes(List<Summary> summaries, Map<String, Integer> eventIndex, List<int[]> ranges) {
        ArrayNode out = NODES.arrayNode();
        for (Summary s : summaries) {
            int first = eventIndex.getOrDefault(coordinates(s.getFirstEvent()), -1);
            int last = eventIndex.getOrDefault(coordinates(s.getLastEvent()), -1);
            ObjectNode n = AvroJson.toJson(s);
            n.put("first_event_index", first);
            n.put("last_event_index", last);
            if (s.getKind() == SummaryKind.EPISODE) {
                n.put("index", ranges.size());
                ranges.add(new int[] {first, last});
            }
            out.add(n);
        }
        return out;
    }

    private static ObjectNode answer(
            Answer a,
            QueryEvent q,
            List<Attribution> attributions,
            Map<String, Integer> eventIndex,
            List<int[]> episodes,
            List<EngramEvent> content) {
        ObjectNode n = AvroJson.toJson(a);
        n.put("question", q == null ? null : q.getQuestion());
        TreeSet<Integer> cited = new TreeSet<>();
        ArrayNode citations = NODES.arrayNode();
        for (Citation c : a.getCitations()) {
            ObjectNode cn = AvroJson.toJson(c);
            int i = eventIndex.getOrDefault(coordinates(c.getSegment().getSource()), -1);
            ((ObjectNode) cn.get("segment")).put("event_index", i);
            if (i >= 0) {
                cited.add(i);
            }
            citations.add(cn);
        }
        n.set("citations", citations);
        TreeSet<Integer> attributed = new TreeSet<>();
        ArrayNode atts = NODES.arrayNode();
        for (Attribution t : attributions) {
            ObjectNode tn = AvroJson.toJson(t);
            ArrayNode segs = NODES.arrayNode();
            for (SourceSegment s : t.getSegments()) {
                ObjectNode sn = AvroJson.toJson(s);
                int i = eventIndex.getOrDefault(coordinates(s.getSource()), -1);
                sn.put("event_index", i);
                if (i >= 0) {
                    attributed.add(i);
                }
                segs.add(sn);
            }
            tn.set("segments", segs);
            atts.add(tn);
        }
        n.set("attributions", atts);
        n.set("cited_events", ints(cited));
        TreeSet<Integer> retrievedEvents = new TreeSet<>();
        ArrayNode retrieved = NODES.arrayNode();
        for (RetrievedSpan r : a.getRetrieved()) {
            ObjectNode rn = AvroJson.toJson(r);
            TreeSet<Integer> covered = new TreeSet<>();
            for (SourceCoordinates c : r.getSources()) {
                int i = eventIndex.getOrDefault(coordinates(c), -1);
                if (i >= 0) {
                    covered.add(i);
                }
            }
            rn.set("event_indices", ints(covered));
            retrievedEvents.addAll(covered);
            retrieved.add(rn);
        }
        n.set("retrieved", retrieved);
        n.set("retrieved_events", ints(retrievedEvents));
        n.set("attributed_events", ints(attributed));
        TreeSet<Integer> citedEpisodes = new TreeSet<>();
        for (int e = 0; e < episodes.size(); e++) {
            int[] r = episodes.get(e);
            if (r[0] >= 0 && r[1] >= 0 && !cited.subSet(r[0], true, r[1], true).isEmpty()) {
                citedEpisodes.add(e);
            }
        }
        n.set("cited_episodes", ints(citedEpisodes));
        n.put("events_before_query", eventsBefore(a.getQuerySource(), content));
        return n;
    }

    /** Content events that came before the query on its partition: the stream the answer's memory held. */
    private static int eventsBefore(SourceCoordinates query, List<EngramEvent> content) {
        int n = 0;
        for (EngramEvent e : content) {
            SourceCoordinates s = e.getSource();
            if (s.getTopic().equals(query.getTopic())
                    && s.getPartition() == query.getPartition()
                    && s.getOffset() < query.getOffset()) {
                n++;
            }
        }
        return n;
    }

    private static ArrayNode ints(Set<Integer> values) {
        ArrayNode out = NODES.arrayNode();
        values.forEach(out::add);
        return out;
    }

    private static String coordinates(SourceCoordinates c) {
        return c == null ? "" : c.getTopic() + "/" + c.getPartition() + "/" + c.getOffset();
    }
}
