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
                .as("query app RUNNING").isTrue();
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
            return HTTP.send(HttpRequest.newBuilder(URI.create(server.uri() + path)).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
        } catch (Exception e) {
            throw new AssertionError("GET " + path, e);
        }
    }

    /** Polls until {@code path} answers 200 and the JSON satisfies the check, or 30 s pass; returns the last body. */
    static JsonNode awaitJson(String path, java.util.function.Predicate<JsonNode> check) throws Exception {
        JsonNode[] last = {null};
        KafkaBroker.await(() -> {
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
        }, Duration.ofSeconds(30));
        assertThat(last[0]).as("200 from %s within 30 s", path).isNotNull();
        return last[0];
    }

    static void produce(String topic, String key, byte[] value) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = KAFKA.producer()) {
            p.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8), value)).get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void answersAreServedByQueryId() throws Exception {
        String topic = options.get(KafkaOptions.ANSWERS_TOPIC);
        produce(topic, "s1", Outputs.bytes(Outputs.answer("s1", "q-1", "The code is 7481 [1].")));
        produce(topic, "s2", "not an answer".getBytes(StandardCharsets.UTF_8)); // skipped, must not stop the app
        produce(topic, "s2", Outputs.bytes(Outputs.answer("s2", "q-2", "Another answer.")));

        JsonNode a1 = awaitJson("/answers/q-1", j -> true);
        assertThat(a1.path("session_id").asText()).isEqualTo("s1");
        assertThat(a1.path("text").asText()).isEqualTo("The code is 7481 [1].");
        assertThat(a1.path("timings").path("total_ms").asLong()).isEqualTo(73L);
        assertThat(a1.path("memory").path("blocks").asInt()).isEqualTo(32);
        JsonNode citation = a1.path("citations").get(0);
        assertThat(citation.path("marker").asText()).isEqualTo("[1]");
        assertThat(citation.path("segment").path("source").path("offset").asLong()).isEqualTo(17L);
        assertThat(citation.path("segment").path("excerpt").asText()).isEqualTo("The vault code is 7481.");

        JsonNode a2 = awaitJson("/answers/q-2", j -> true);
        assertThat(a2.path("text").asText()).isEqualTo("Another answer.");
        assertThat(streams.state()).isEqualTo(KafkaStreams.State.RUNNING);

        HttpResponse<String> missing = get("/answers/no-such-query");
        assertThat(missing.statusCode()).isEqualTo(404);
        assertThat(JSON.readTree(missing.body()).path("error").asText()).contains("no-such-query");
    }

    @Test
    void theLatestSummaryOfASessionIsServed() throws Exception {
        String topic = options.get(KafkaOptions.SUMMARIES_TOPIC);
        produce(topic, "s1", Outputs.bytes(Outputs.summary("s1", 5, "first episode")));
        produce(topic, "s1", Outputs.bytes(Outputs.summary("s1", 9, "up to nine")));
        produce(topic, "s3", Outputs.bytes(Outputs.summary("s3", 2, "other session")));

        JsonNode s1 = awaitJson("/sessions/s1/summary", j -> j.path("last_event").path("offset").asLong() == 9);
        assertThat(s1.path("text").asText()).isEqualTo("up to nine");
        assertThat(s1.path("kind").asText()).isEqualTo("EPISODE");
        assertThat(awaitJson("/sessions/s3/summary", j -> true).path("text").asText()).isEqualTo("other session");
        assertThat(get("/sessions/nobody/summary").statusCode()).isEqualTo(404);
        assertThat(get("/nowhere").statusCode()).isEqualTo(404);
    }
}
