package io.engram.topology.queries;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.engram.schemas.Answer;
import io.engram.schemas.AnswerTimings;
import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionMethod;
import io.engram.schemas.Citation;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.ControlAction;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.MemoryStats;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.RetrievedSpan;
import io.engram.schemas.SourceCoordinates;
import io.engram.schemas.SourceSegment;
import io.engram.schemas.Summary;
import io.engram.schemas.SummaryKind;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SessionViewTest {

    static final String IN = "in";

    static EngramEvent event(long offset, String id, Object payload) {
        return EngramEvent.newBuilder()
                .setSessionId("ada")
                .setEventId(id)
                .setTimestampMs(offset)
                .setPayload(payload)
                .setSource(new SourceCoordinates(IN, 1, offset))
                .build();
    }

    static EngramEvent content(long offset, String id, String text) {
        return event(
                offset,
                id,
                ContentEvent.newBuilder()
                        .setKind(ContentKind.DOCUMENT_CHUNK)
                        .setText(text)
                        .build());
    }

    static EngramEvent query(long offset, String queryId, String question) {
        return event(
                offset,
                queryId,
                new QueryEvent(
                        queryId,
                        question,
                        GenerationOptions.newBuilder()
                                .setMaxNewTokens(4)
                                .setTemperature(0f)
                                .setStop(List.of())
                                .build()));
    }

    static SourceSegment segment(long offset, String eventId, int from, int to, int rank) {
        return SourceSegment.newBuilder()
                .setSource(new SourceCoordinates(IN, 1, offset))
                .setEventId(eventId)
                .setCharStart(from)
                .setCharEnd(to)
                .setExcerpt("x")
                .setScore(1.0 / rank)
                .setRank(rank)
                .build();
    }

    static Answer answer(String queryId, long queryOffset, SourceSegment... cited) {
        List<Citation> citations = new ArrayList<>();
        for (SourceSegment s : cited) {
            citations.add(new Citation("[" + s.getRank() + "]", s));
        }
        return Answer.newBuilder()
                .setSessionId("ada")
                .setQueryId(queryId)
                .setQuerySource(new SourceCoordinates(IN, 1, queryOffset))
                .setText("answer of " + queryId)
                .setPromptTokens(10)
                .setMemoryTokens(90)
                .setGeneratedTokens(3)
                .setTimings(new AnswerTimings(0L, 0L, 1L, 2L, 3L))
                .setModel("m")
                .setMemory(new MemoryStats(90L, 6, 4096L, "00ff"))
                .setCitations(citations)
                .setCreatedAtMs(5L)
                .build();
    }

    static Summary episode(long firstOffset, long lastOffset, long firstToken, long lastToken) {
        return Summary.newBuilder()
                .setSessionId("ada")
                .setKind(SummaryKind.EPISODE)
                .setFirstEvent(new SourceCoordinates(IN, 1, firstOffset))
                .setLastEvent(new SourceCoordinates(IN, 1, lastOffset))
                .setFirstToken(firstToken)
                .setLastToken(lastToken)
                .setText("episode")
                .setModel("m")
                .setCreatedAtMs(0L)
                .build();
    }

    /**
     * Offsets on partition 1: 10 c0, 11 c1, 12 q1, 13 c2, 14 reset, 15 c3, 16 q2 (answered), 17 q3 (pending). Episodes
     * cover c0..c1 and c2..c3.
     */
    static SessionData data() {
        List<EngramEvent> events = List.of(
                content(10, "c0", "The vault code is 7481."),
                content(11, "c1", "Gulls nest on the cliffs."),
                query(12, "q1", "What is the code?"),
                content(13, "c2", "The keeper is Ada."),
                event(14, "r", new ControlEvent(ControlAction.RESET)),
                content(15, "c3", "The lamp is red."),
                query(16, "q2", "Who keeps it?"),
                query(17, "q3", "Still there?"));
        List<Answer> answers = List.of(
                answer("q1", 12, segment(10, "c0", 4, 22, 1)),
                answer("q2", 16, segment(13, "c2", 0, 18, 1), segment(99, "gone", 0, 3, 2)));
        List<Summary> summaries = List.of(episode(10, 11, 0, 11), episode(13, 15, 12, 25));
        List<Attribution> attributions = List.of(Attribution.newBuilder()
                .setSessionId("ada")
                .setQueryId("q2")
                .setMethod(AttributionMethod.PRECISE)
                .setSegments(List.of(segment(15, "c3", 0, 8, 1)))
                .setElapsedMs(7L)
                .setCreatedAtMs(6L)
                .build());
        return new SessionData("ada", events, answers, summaries, attributions, summaries.getLast());
    }

    @Test
    void contentEventsAreTheSourceTextInTopicOrder() {
        ObjectNode v = SessionView.toJson(data());
        JsonNode events = v.get("events");
        assertThat(events).hasSize(4);
        assertThat(events.get(2).path("event_id").asText()).isEqualTo("c2");
        assertThat(events.get(2).path("source").path("offset").asLong()).isEqualTo(13);
        assertThat(events.get(1).path("stream_char_start").asLong()).isEqualTo("The vault code is 7481.".length());
        assertThat(v.path("controls").get(0).path("action").asText()).isEqualTo("RESET");
        assertThat(v.path("controls").get(0).path("before_event").asInt()).isEqualTo(3);
        assertThat(v.path("latest_summary").path("first_token").asLong()).isEqualTo(12);
        assertThat(v.path("latest_summary").path("first_event_index").asInt()).isEqualTo(2);
        assertThat(v.path("latest_summary").path("last_event_index").asInt()).isEqualTo(3);
        assertThat(v.path("memory").path("blocks").asInt()).isEqualTo(6);
    }

    @Test
    void answersCarryTheirQuestionAndTheEventsAndEpisodesTheyCite() {
        JsonNode answers = SessionView.toJson(data()).get("answers");
        assertThat(answers).hasSize(2);
        JsonNode q1 = answers.get(0);
        assertThat(q1.path("question").asText()).isEqualTo("What is the code?");
        assertThat(q1.path("citations")
                        .get(0)
                        .path("segment")
                        .path("event_index")
                        .asInt())
                .isEqualTo(0);
        assertThat(q1.path("cited_events").toString()).isEqualTo("[0]");
        assertThat(q1.path("cited_episodes").toString()).isEqualTo("[0]");
        assertThat(q1.path("events_before_query").asInt()).isEqualTo(2);

        JsonNode q2 = answers.get(1);
        assertThat(q2.path("question").asText()).isEqualTo("Who keeps it?");
        assertThat(q2.path("citations")
                        .get(1)
                        .path("segment")
                        .path("event_index")
                        .asInt())
                .as("a citation of an event the view does not hold")
                .isEqualTo(-1);
        assertThat(q2.path("cited_events").toString()).isEqualTo("[2]");
        assertThat(q2.path("cited_episodes").toString()).isEqualTo("[1]");
        assertThat(q2.path("attributions").get(0).path("method").asText()).isEqualTo("PRECISE");
        assertThat(q2.path("attributions")
                        .get(0)
                        .path("segments")
                        .get(0)
                        .path("event_index")
                        .asInt())
                .isEqualTo(3);
        assertThat(q2.path("attributed_events").toString()).isEqualTo("[3]");
        assertThat(q2.path("events_before_query").asInt()).isEqualTo(4);
    }

    @Test
    void answersCarryTheEventsTheirRetrievedSpansCameFrom() {
        SessionData d = data();
        List<Answer> answers = new ArrayList<>(d.answers());
        answers.set(
                1,
                Answer.newBuilder(answers.get(1))
                        .setRetrieved(List.of(
                                new RetrievedSpan(0L, 8L, 2, List.of(new SourceCoordinates(IN, 1, 13L))),
                                new RetrievedSpan(
                                        8L,
                                        16L,
                                        1,
                                        List.of(
                                                new SourceCoordinates(IN, 1, 13L),
                                                new SourceCoordinates(IN, 1, 15L),
                                                new SourceCoordinates(IN, 1, 99L)))))
                        .build());
        JsonNode view = SessionView.toJson(
                        new SessionData("ada", d.events(), answers, d.summaries(), d.attributions(), d.latestSummary()))
                .get("answers");
        JsonNode q2 = view.get(1);
        assertThat(q2.path("retrieved")).hasSize(2);
        assertThat(q2.path("retrieved").get(0).path("first_token").asLong()).isZero();
        assertThat(q2.path("retrieved").get(0).path("end_token").asLong()).isEqualTo(8);
        assertThat(q2.path("retrieved").get(0).path("layers").asInt()).isEqualTo(2);
        assertThat(q2.path("retrieved").get(0).path("event_indices").toString()).isEqualTo("[2]");
        assertThat(q2.path("retrieved").get(1).path("event_indices").toString())
                .as("an event the view does not hold is left out")
                .isEqualTo("[2,3]");
        assertThat(q2.path("retrieved_events").toString()).isEqualTo("[2,3]");
        // an answer written before the field retrieved nothing
        assertThat(view.get(0).path("retrieved")).isEmpty();
        assertThat(view.get(0).path("retrieved_events").toString()).isEqualTo("[]");
    }

    @Test
    void unansweredQueriesArePendingAndEpisodesMapOntoEvents() {
        ObjectNode v = SessionView.toJson(data());
        assertThat(v.get("pending")).hasSize(1);
        assertThat(v.get("pending").get(0).path("query_id").asText()).isEqualTo("q3");
        JsonNode episodes = v.get("episodes");
        assertThat(episodes.get(1).path("first_event_index").asInt()).isEqualTo(2);
        assertThat(episodes.get(1).path("last_event_index").asInt()).isEqualTo(3);
        assertThat(episodes.get(1).path("index").asInt()).isEqualTo(1);
    }

    @Test
    void anEmptySessionHasAnEmptyView() {
        SessionData empty = new SessionData("nobody", List.of(), List.of(), List.of(), List.of(), null);
        assertThat(empty.isEmpty()).isTrue();
        ObjectNode v = SessionView.toJson(empty);
        assertThat(v.get("events")).isEmpty();
        assertThat(v.get("answers")).isEmpty();
        assertThat(v.get("latest_summary").isNull()).isTrue();
        assertThat(v.get("memory").isNull()).isTrue();
    }

    @Test
    void logKeysSortBySessionThenPartitionThenOffset() {
        List<String> keys = new ArrayList<>(List.of(
                SessionLog.key("a", 0, 100),
                SessionLog.key("a", 0, 9),
                SessionLog.key("a", 1, 0),
                SessionLog.key("ab", 0, 0)));
        java.util.Collections.sort(keys);
        assertThat(keys)
                .containsExactly(
                        SessionLog.key("a", 0, 9),
                        SessionLog.key("a", 0, 100),
                        SessionLog.key("a", 1, 0),
                        SessionLog.key("ab", 0, 0));
        assertThat(SessionLog.sessionOf(SessionLog.key("ab", 3, 7))).isEqualTo("ab");
        assertThat(SessionLog.key("a", 0, 9)).startsWith(SessionLog.prefix("a"));
        assertThat(SessionLog.key("ab", 0, 9)).doesNotStartWith(SessionLog.prefix("a"));
    }

    @Test
    void aWaiterWakesOnATouchOfItsSessionOnly() throws Exception {
        SessionChanges changes = new SessionChanges();
        assertThat(changes.await("ada", 0, java.time.Duration.ofMillis(20)))
                .as("nothing changed")
                .isZero();
        java.util.concurrent.CompletableFuture<Long> woken = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
            try {
                return changes.await("ada", 0, java.time.Duration.ofSeconds(30));
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        });
        changes.touch("bob");
        changes.touch("ada");
        assertThat(woken.get(10, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(1L);
        assertThat(changes.version("bob")).isEqualTo(1L);
    }
}
