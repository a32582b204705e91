package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import io.engram.topology.queries.EngramQueries;
import io.engram.topology.queries.QueryServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The Kafka Streams query app on a real broker: outputs produced to their topics come back over HTTP. */
class StreamsQueryIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    static final HttpClient HTTP = HttpClient.newHttpClient();
    static final ObjectMapper JSON = new ObjectMapper();

    static ResolvedOptions options;
    static KafkaStreams streams;
    static QueryServer server;

    @BeforeAll
    static void start() throws Exception {
        options = KAFKA.newOptions(1, Map.of());
        StreamsBuilder builder = new StreamsBuilder();
        EngramQueries.build(builder, options);
        streams = new KafkaStreams(builder.build(), EngramQueries.streamsConfig(options));
        streams.start();
        server = new QueryServer(streams, "127.0.0.1", 0);
        assertThat(KafkaBroker.await(() -> get("/health").statusCode() == 200, Duration.ofSeconds(60)))
                .as("query app RUNNING")
                .isTrue();
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
        if (streams != null) {
            streams.close(Duration.ofSeconds(10));
        }
    }

    static HttpResponse<String> get(String path) {
        try {
            return HTTP.send(
                    HttpRequest.newBuilder(URI.create(server.uri() + path))
                            .GET()
                            .build(),
                    HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
            throw new AssertionError("GET " + path, e);
        }
    }

    /** Polls until {@code path} answers 200 and the JSON satisfies the check, or 30 s pass; returns the last body. */
    static JsonNode awaitJson(String path, java.util.function.Predicate<JsonNode> check) throws Exception {
        JsonNode[] last = {null};
        KafkaBroker.await(
                () -> {
                    HttpResponse<String> r = get(path);
                    if (r.statusCode() != 200) {
                        return false;
                    }
                    try {
                        last[0] = JSON.readTree(r.body());
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                    return check.test(last[0]);
                },
                Duration.ofSeconds(30));
        assertThat(last[0]).as("200 from %s within 30 s", path).isNotNull();
        return last[0];
    }

    static void produce(String topic, String key, byte[] value) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = KAFKA.producer()) {
            p.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8), value))
                    .get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void answersAreServedPerSessionAndQueryIdAndNeverToAnotherSession() throws Exception {
        String topic = options.get(KafkaOptions.ANSWERS_TOPIC);
        produce(topic, "s1", Outputs.bytes(Outputs.answer("s1", "q-1", "The code is 7481 [1].")));
        produce(topic, "s2", "not an answer".getBytes(StandardCharsets.UTF_8)); // skipped, must not stop the app
        produce(topic, "s2", Outputs.bytes(Outputs.answer("s2", "q-2", "Another answer.")));

        JsonNode a1 = awaitJson("/sessions/s1/answers/q-1", j -> true);
        assertThat(a1.path("session_id").asText()).isEqualTo("s1");
        assertThat(a1.path("text").asText()).isEqualTo("The code is 7481 [1].");
        assertThat(a1.path("timings").path("total_ms").asLong()).isEqualTo(73L);
        assertThat(a1.path("memory").path("blocks").asInt()).isEqualTo(32);
        JsonNode citation = a1.path("citations").get(0);
        assertThat(citation.path("marker").asText()).isEqualTo("[1]");
        assertThat(citation.path("segment").path("source").path("offset").asLong())
                .isEqualTo(17L);
        assertThat(citation.path("segment").path("excerpt").asText()).isEqualTo("The vault code is 7481.");

        JsonNode a2 = awaitJson("/sessions/s2/answers/q-2", j -> true);
        assertThat(a2.path("text").asText()).isEqualTo("Another answer.");
        assertThat(streams.state()).isEqualTo(KafkaStreams.State.RUNNING);

        // another session's query id, or the same query id answered in two sessions: each session sees only its own
        assertThat(get("/sessions/s2/answers/q-1").statusCode()).isEqualTo(404);
        produce(topic, "s2", Outputs.bytes(Outputs.answer("s2", "q-1", "s2's own q-1.")));
        assertThat(awaitJson("/sessions/s2/answers/q-1", j -> true).path("text").asText())
                .isEqualTo("s2's own q-1.");
        assertThat(get("/sessions/s1/answers/q-1").body())
                .contains("The code is 7481 [1].")
                .doesNotContain("s2's own");

        HttpResponse<String> missing = get("/sessions/s1/answers/no-such-query");
        assertThat(missing.statusCode()).isEqualTo(404);
        assertThat(JSON.readTree(missing.body()).path("error").asText()).contains("no-such-query");
        HttpResponse<String> sessionless = get("/answers/q-1");
        assertThat(sessionless.statusCode()).isEqualTo(404);
        assertThat(sessionless.body()).contains("per session").doesNotContain("7481");
    }

    @Test
    void theLatestSummaryOfASessionIsServed() throws Exception {
        String topic = options.get(KafkaOptions.SUMMARIES_TOPIC);
        produce(topic, "s1", Outputs.bytes(Outputs.summary("s1", 5, "first episode")));
        produce(topic, "s1", Outputs.bytes(Outputs.summary("s1", 9, "up to nine")));
        produce(topic, "s3", Outputs.bytes(Outputs.summary("s3", 2, "other session")));

        JsonNode s1 = awaitJson(
                "/sessions/s1/summary", j -> j.path("last_event").path("offset").asLong() == 9);
        assertThat(s1.path("text").asText()).isEqualTo("up to nine");
        assertThat(s1.path("kind").asText()).isEqualTo("EPISODE");
        assertThat(awaitJson("/sessions/s3/summary", j -> true).path("text").asText())
                .isEqualTo("other session");
        assertThat(get("/sessions/nobody/summary").statusCode()).isEqualTo(404);
        assertThat(get("/nowhere").statusCode()).isEqualTo(404);
    }

    @Test
    void aSessionViewJoinsItsEventsAnswersAndAttributions() throws Exception {
        String input = options.get(KafkaOptions.INPUT_TOPIC);
        io.engram.schemas.EngramEvent content = io.engram.schemas.EngramEvent.newBuilder()
                .setSessionId("s9")
                .setEventId("e-1")
                .setTimestampMs(1L)
                .setPayload(io.engram.schemas.ContentEvent.newBuilder()
                        .setKind(io.engram.schemas.ContentKind.DOCUMENT_CHUNK)
                        .setText("The vault code is 7481.")
                        .build())
                .build();
        io.engram.schemas.EngramEvent question = io.engram.schemas.EngramEvent.newBuilder()
                .setSessionId("s9")
                .setEventId("q-9")
                .setTimestampMs(2L)
                .setPayload(new io.engram.schemas.QueryEvent(
                        "q-9",
                        "What is the code?",
                        io.engram.schemas.GenerationOptions.newBuilder()
                                .setMaxNewTokens(4)
                                .setTemperature(0f)
                                .setStop(java.util.List.of())
                                .build()))
                .build();
        long contentOffset;
        try (KafkaProducer<byte[], byte[]> p = KAFKA.producer()) {
            contentOffset = p.send(
                            new ProducerRecord<>(input, "s9".getBytes(StandardCharsets.UTF_8), Outputs.bytes(content)))
                    .get(10, TimeUnit.SECONDS)
                    .offset();
            p.send(new ProducerRecord<>(input, "other-key".getBytes(StandardCharsets.UTF_8), Outputs.bytes(content)))
                    .get(10, TimeUnit.SECONDS); // key is not the session: the job refuses it, the view leaves it out
        }
        produce(input, "s9", Outputs.bytes(question));
        long queryOffset = contentOffset + 2;
        io.engram.schemas.SourceSegment cited = io.engram.schemas.SourceSegment.newBuilder()
                .setSource(new io.engram.schemas.SourceCoordinates(input, 0, contentOffset))
                .setEventId("e-1")
                .setCharStart(18)
                .setCharEnd(22)
                .setExcerpt("7481")
                .setScore(0.9)
                .setRank(1)
                .build();
        io.engram.schemas.Answer answer = Outputs.answer("s9", "q-9", "It is 7481 [1].");
        answer.setQuerySource(new io.engram.schemas.SourceCoordinates(input, 0, queryOffset));
        answer.setCitations(java.util.List.of(new io.engram.schemas.Citation("[1]", cited)));
        produce(options.get(KafkaOptions.ANSWERS_TOPIC), "s9", Outputs.bytes(answer));
        produce(
                options.get(KafkaOptions.ATTRIBUTIONS_TOPIC),
                "s9",
                Outputs.bytes(io.engram.schemas.Attribution.newBuilder()
                        .setSessionId("s9")
                        .setQueryId("q-9")
                        .setMethod(io.engram.schemas.AttributionMethod.PRECISE)
                        .setSegments(java.util.List.of(cited))
                        .setElapsedMs(12L)
                        .setCreatedAtMs(3L)
                        .build()));

        JsonNode view = awaitJson(
                "/api/sessions/s9",
                j -> j.path("answers").size() == 1
                        && j.path("answers").get(0).path("attributions").size() == 1);
        assertThat(view.path("events")).hasSize(1);
        assertThat(view.path("events").get(0).path("source").path("offset").asLong())
                .isEqualTo(contentOffset);
        assertThat(view.path("events").get(0).path("source").path("topic").asText())
                .isEqualTo(input);
        JsonNode a = view.path("answers").get(0);
        assertThat(a.path("question").asText()).isEqualTo("What is the code?");
        assertThat(a.path("citations")
                        .get(0)
                        .path("segment")
                        .path("event_index")
                        .asInt())
                .isZero();
        assertThat(a.path("cited_events").toString()).isEqualTo("[0]");
        assertThat(a.path("attributions").get(0).path("method").asText()).isEqualTo("PRECISE");
        assertThat(a.path("attributions")
                        .get(0)
                        .path("segments")
                        .get(0)
                        .path("event_index")
                        .asInt())
                .isZero();
        assertThat(view.path("pending")).isEmpty();
        assertThat(view.path("truncated").asBoolean()).isFalse();
        // a long session is read from its end: the newest record of each log only
        JsonNode newest = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(get("/api/sessions/s9?limit=1").body());
        assertThat(newest.path("truncated").asBoolean()).isTrue();
        assertThat(newest.path("events"))
                .as("the question is the newest input event")
                .isEmpty();
        assertThat(newest.path("answers")).hasSize(1);
        assertThat(newest.path("next_before").asLong())
                .as("the question's offset")
                .isEqualTo(queryOffset);
        JsonNode older = new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree(get("/api/sessions/s9?limit=5&before=" + queryOffset).body());
        assertThat(older.path("events")).hasSize(1);
        assertThat(older.path("events").get(0).path("source").path("offset").asLong())
                .isEqualTo(contentOffset);
        assertThat(older.path("answers"))
                .as("answers to queries from the before offset on are not on it")
                .isEmpty();
        assertThat(older.path("truncated").asBoolean()).isFalse();
        assertThat(older.path("next_before").isNull()).isTrue();
        for (String bad :
                java.util.List.of("?limit=0", "?limit=x", "?limit=10001", "?from=3", "?before=-1", "?limit=2&")) {
            assertThat(get("/api/sessions/s9" + bad).statusCode()).as(bad).isEqualTo(400);
        }

        JsonNode sessions =
                awaitJson("/api/sessions", j -> j.path("sessions").toString().contains("\"s9\""));
        JsonNode row = null;
        for (JsonNode r : sessions.path("sessions")) {
            row = "s9".equals(r.path("session_id").asText()) ? r : row;
        }
        assertThat(row).isNotNull();
        assertThat(row.path("content_events").asInt()).isEqualTo(1);
        assertThat(row.path("queries").asInt()).isEqualTo(1);
        assertThat(row.path("answers").asInt()).isEqualTo(1);

        HttpResponse<java.util.stream.Stream<String>> stream = HTTP.send(
                HttpRequest.newBuilder(URI.create(server.uri() + "/api/sessions/s9/stream"))
                        .GET()
                        .build(),
                HttpResponse.BodyHandlers.ofLines());
        assertThat(stream.headers().firstValue("Content-Type").orElse("")).startsWith("text/event-stream");
        try (java.util.stream.Stream<String> lines = stream.body()) {
            java.util.Iterator<String> it = lines.iterator();
            assertThat(it.next()).isEqualTo("event: session");
            assertThat(JSON.readTree(it.next().substring("data: ".length()))
                            .path("answers")
                            .size())
                    .isEqualTo(1);
        }
        HttpResponse<String> page = get("/sessions/s9");
        assertThat(page.headers().firstValue("Content-Type").orElse("")).startsWith("text/html");
        assertThat(page.body()).contains("/static/session.js");
        assertThat(get("/static/session.js").statusCode()).isEqualTo(200);
        assertThat(get("/static/nope.js").statusCode()).isEqualTo(404);
    }

    private static io.engram.schemas.EngramEvent event(String session, String id, Object payload) {
        return io.engram.schemas.EngramEvent.newBuilder()
                .setSessionId(session)
                .setEventId(id)
                .setTimestampMs(1L)
                .setPayload(payload)
                .build();
    }

    private static io.engram.schemas.QueryEvent query(String id, String question) {
        return new io.engram.schemas.QueryEvent(
                id,
                question,
                io.engram.schemas.GenerationOptions.newBuilder()
                        .setMaxNewTokens(4)
                        .setTemperature(0f)
                        .setStop(java.util.List.of())
                        .build());
    }

    private static long send(String topic, String key, byte[] value) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = KAFKA.producer()) {
            return p.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8), value))
                    .get(10, TimeUnit.SECONDS)
                    .offset();
        }
    }

    @Test
    void aClosedSessionIsErasedFromEveryStoreAndRefusedEventsLeaveTheLog() throws Exception {
        String input = options.get(KafkaOptions.INPUT_TOPIC);
        String s = "s-closed";
        io.engram.schemas.ContentEvent text = io.engram.schemas.ContentEvent.newBuilder()
                .setKind(io.engram.schemas.ContentKind.DOCUMENT_CHUNK)
                .setText("The vault code is 7481.")
                .build();
        long contentAt = send(input, s, Outputs.bytes(event(s, "e-1", text)));
        long refusedAt = send(input, s, Outputs.bytes(event(s, "e-bad", text)));
        long queryAt = send(input, s, Outputs.bytes(event(s, "q-1", query("q-1", "What is the code?"))));
        io.engram.schemas.Answer answer = Outputs.answer(s, "q-1", "It is 7481.");
        answer.setQuerySource(new io.engram.schemas.SourceCoordinates(input, 0, queryAt));
        produce(options.get(KafkaOptions.ANSWERS_TOPIC), s, Outputs.bytes(answer));
        produce(
                options.get(KafkaOptions.SUMMARIES_TOPIC),
                s,
                Outputs.bytes(Outputs.summary(s, contentAt, "a vault code")));
        produce(
                options.get(KafkaOptions.DEAD_LETTER_TOPIC),
                s,
                io.engram.schemas.DeadLetter.getEncoder()
                        .encode(io.engram.schemas.DeadLetter.newBuilder()
                                .setSource(new io.engram.schemas.SourceCoordinates(input, 0, refusedAt))
                                .setKey(java.nio.ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8)))
                                .setValue(java.nio.ByteBuffer.wrap(new byte[0]))
                                .setReason("refused")
                                .setErrorClass(io.engram.schemas.ErrorClass.INVALID_EVENT)
                                .setSessionId(s)
                                .setEventId("e-bad")
                                .setTimestampMs(1L)
                                .build())
                        .array());
        JsonNode view = awaitJson(
                "/api/sessions/" + s,
                j -> j.path("answers").size() == 1 && j.path("events").size() == 1);
        assertThat(view.path("events").get(0).path("event_id").asText())
                .as("the refused event left the log")
                .isEqualTo("e-1");
        assertThat(awaitJson("/sessions/" + s + "/summary", j -> true)
                        .path("text")
                        .asText())
                .isEqualTo("a vault code");

        long closedAt = send(
                input,
                s,
                Outputs.bytes(event(
                        s,
                        "close",
                        new io.engram.schemas.ControlEvent(io.engram.schemas.ControlAction.CLOSE_SESSION))));
        assertThat(KafkaBroker.await(
                        () -> get("/sessions/" + s + "/answers/q-1").statusCode() == 404, Duration.ofSeconds(30)))
                .as("the answer is erased")
                .isTrue();
        assertThat(get("/sessions/" + s + "/summary").statusCode()).isEqualTo(404);
        HttpResponse<String> after = get("/api/sessions/" + s);
        assertThat(after.statusCode())
                .as("nothing of the session is left: %s", after.body())
                .isEqualTo(404);
        assertThat(after.body()).doesNotContain("7481");

        // outputs of the job that arrive after the close but belong to before it are not kept; later ones are
        produce(options.get(KafkaOptions.ANSWERS_TOPIC), s, Outputs.bytes(answer));
        produce(
                options.get(KafkaOptions.SUMMARIES_TOPIC),
                s,
                Outputs.bytes(Outputs.summary(s, contentAt, "late summary")));
        long reopenedAt = send(input, s, Outputs.bytes(event(s, "e-2", text)));
        long query2At = send(input, s, Outputs.bytes(event(s, "q-2", query("q-2", "And now?"))));
        io.engram.schemas.Answer later = Outputs.answer(s, "q-2", "After the close.");
        later.setQuerySource(new io.engram.schemas.SourceCoordinates(input, 0, query2At));
        produce(options.get(KafkaOptions.ANSWERS_TOPIC), s, Outputs.bytes(later));
        JsonNode reopened =
                awaitJson("/api/sessions/" + s, j -> j.path("answers").size() == 1);
        assertThat(reopened.path("events").get(0).path("source").path("offset").asLong())
                .isEqualTo(reopenedAt);
        assertThat(reopened.path("answers").get(0).path("text").asText()).isEqualTo("After the close.");
        assertThat(get("/sessions/" + s + "/answers/q-1").statusCode()).isEqualTo(404);
        assertThat(get("/sessions/" + s + "/summary").statusCode()).isEqualTo(404);
        assertThat(closedAt).isLessThan(reopenedAt);
    }

    @Test
    void topicsWithDifferentPartitionCountsAreRefusedWithTheCounts() throws Exception {
        ResolvedOptions same = KAFKA.newOptions(2, Map.of());
        ResolvedOptions mixed = same.with(Map.of(KafkaOptions.ANSWERS_TOPIC.key(), KAFKA.newTopic("answers-3", 3)));
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(Map.of(
                org.apache.kafka.clients.admin.AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, KAFKA.bootstrapServers()))) {
            io.engram.topology.embedded.EngramTopics.requireSamePartitions(admin, same);
            org.assertj.core.api.Assertions.assertThatThrownBy(
                            () -> io.engram.topology.embedded.EngramTopics.requireSamePartitions(admin, mixed))
                    .isInstanceOf(io.engram.topology.options.ConfigException.class)
                    .hasMessageContaining("one partition count")
                    .hasMessageContaining("=3")
                    .hasMessageContaining("=2");
        }
    }
}
