package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.engine.SharedFiles;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.schemas.Answer;
import io.engram.schemas.Citation;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SourceSegment;
import io.engram.topology.EngineSessionStage;
import io.engram.topology.EngramJob;
import io.engram.topology.EngramSinks;
import io.engram.topology.EngramSources;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import io.engram.topology.queries.EngramQueries;
import io.engram.topology.queries.QueryServer;
import io.engram.topology.queries.SessionChanges;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The web view in a real browser (headless Chromium over the DevTools protocol) on the whole pipeline: a real broker,
 * the Flink job with the engine (stories260K from ../shared when present, else a generated tiny model), the query
 * app and its HTTP server. A session's page must show the answers as the answers topic holds them, their citations
 * with Kafka coordinates, the cited spans highlighted in the session's source text, the memory map with the cited
 * events and the episode summaries' ranges; an answer produced after the page loaded must appear without a reload.
 * Writes a screenshot to target/web-view.png. Skips with a message when no Chromium is installed (see
 * src/test/browser/install-chromium.sh).
 */
class WebViewIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newHttpClient();
    static final Duration ANSWER_WAIT = Duration.ofSeconds(90);

    /**
     * Paragraphs of a few sentences, each shorter than an attribution segment (engram.attribution.segment-words, 100
     * words by default), so a citation covers its whole paragraph.
     */
    static final List<String> ADA = List.of(
            "Once upon a time, there was a little girl named Lily. She had a red ball that she loved very much. Every "
                    + "day she took the ball to the park and played with her friends. They threw the ball high into the "
                    + "sky and laughed when it came down. Lily's mom watched them from a bench and smiled.",
            "One day, a big brown dog ran into the park. The dog saw the red ball and wanted to play too. He took the "
                    + "ball in his mouth and ran away to the pond. Lily was very sad. She cried and said, \"Come back, "
                    + "dog! That is my ball!\" But the dog did not stop.",
            "Lily's friend Tom saw her cry. He said, \"Don't be sad, Lily. I will help you find your ball.\" They "
                    + "walked to the pond together. They looked under the bushes and behind the rocks. At last they "
                    + "found the ball under a tall tree near the water. Lily hugged Tom and said thank you.",
            "When they came home, Mom made a big cake for Lily and Tom. It was a yellow cake with a blue star on top. "
                    + "Lily and Tom ate the cake in the garden. The sun was warm and the birds were singing. It was the "
                    + "best day ever.",
            "The next morning, Lily saw the brown dog again. This time the dog was wagging his tail. He brought her a "
                    + "stick and put it at her feet. Lily laughed and threw the stick. The dog ran to get it and came "
                    + "back. Now the dog was her friend too.",
            "At night, Lily went to bed with her red ball next to her pillow. She thought about the dog, the cake and "
                    + "her friend Tom. She closed her eyes and had a happy dream about a park full of balls and "
                    + "friendly dogs.");

    /** The DOM facts the assertions look at, gathered in one script. */
    static final String PROBE = """
            (() => ({
              live: document.body.dataset.live,
              answers: [...document.querySelectorAll('#answers .answer')].map(a => ({
                query: a.dataset.queryId,
                text: a.querySelector('.answer-text').textContent,
                selected: a.classList.contains('selected'),
                coords: [...a.querySelectorAll('.citation .coords')].map(c => c.textContent)})),
              events: [...document.querySelectorAll('#source .event')].map(e => ({
                id: e.dataset.eventId, text: e.querySelector('.event-text').textContent})),
              marks: [...document.querySelectorAll('#source mark.hl')].map(m => ({
                text: m.textContent, title: m.title, event: m.closest('.event').dataset.eventId})),
              mapEvents: document.querySelectorAll('#memory-map .mm-event').length,
              mapCited: [...document.querySelectorAll('#memory-map .mm-event.cited')].map(e => Number(e.dataset.eventIndex)),
              mapRetrieved: [...document.querySelectorAll('#memory-map .mm-event.retrieved')].map(e => ({
                index: Number(e.dataset.eventIndex), title: e.title})),
              legend: document.querySelector('.memory-col .legend').textContent,
              episodes: document.querySelectorAll('#memory-map .mm-episode').length
            }))()""";

    @Test
    void aSessionPageShowsAnswersCitationsSourceAndMemoryAndUpdatesLive() throws Exception {
        Optional<Path> browser = Chromium.find();
        assumeTrue(
                browser.isPresent(),
                "no Chromium found (looked at " + Chromium.searched() + "); run "
                        + "integration-tests/src/test/browser/install-chromium.sh to install it; skipping the web view test");
        EngramSchemas.trustEngramClasses();
        Path model = model();
        ResolvedOptions options = KAFKA.newOptions(
                1,
                Map.ofEntries(
                        Map.entry("engram.model.dir", model.toString()),
                        Map.entry("engram.engine.block-size", "16"),
                        Map.entry("engram.engine.prefill-chunk", "32"),
                        Map.entry("engram.engine.threads", "1"),
                        Map.entry("engram.engine.max-new-tokens", "16"),
                        Map.entry("engram.engine.summary-tokens", "16"),
                        Map.entry("engram.engine.summary-interval-tokens", "160"),
                        Map.entry("engram.engine.batch-window", "0ms"),
                        Map.entry("engram.job.parallelism", "1"),
                        Map.entry("engram.job.checkpoint-interval", "300ms"),
                        Map.entry(
                                "engram.job.checkpoint-dir",
                                KAFKA.newDir("checkpoints").toUri().toString())));

        JobClient job = startJob(options);
        StreamsBuilder builder = new StreamsBuilder();
        SessionChanges changes = EngramQueries.build(builder, options);
        KafkaStreams streams = new KafkaStreams(builder.build(), EngramQueries.streamsConfig(options));
        streams.start();
        try (QueryServer server = new QueryServer(streams, changes, "127.0.0.1", 0)) {
            List<EngramEvent> input = new ArrayList<>();
            for (int i = 0; i < ADA.size(); i++) {
                input.add(content("ada", "ada-c" + i, ADA.get(i)));
            }
            input.add(content("bob", "bob-c0", "Bob has a green kite that flies over the hill."));
            input.add(query("ada", "ada-q1", "Who took the ball?"));
            input.add(query("ada", "ada-q2", "What did Mom make?"));
            KAFKA.produceEvents(options, input);
            // one input partition, produced one by one and first: ada-cN is at offset N
            List<Long> offsets =
                    java.util.stream.LongStream.range(0, ADA.size()).boxed().toList();
            List<Answer> answers = awaitAnswers(options, 2);
            assertThat(KafkaBroker.await(() -> apiAnswers(server, "ada") == 2, Duration.ofSeconds(30)))
                    .as("GET /api/sessions/ada lists both answers")
                    .isTrue();
            assertThat(get(server, "/api/sessions/nobody").statusCode()).isEqualTo(404);

            try (Chromium page =
                    Chromium.launch(browser.get(), URI.create(server.uri() + "/sessions/ada"), 1400, 1000)) {
                assertThat(page.await(
                                "document.querySelectorAll('#answers .answer').length === 2 "
                                        + "&& document.body.dataset.live === 'open'",
                                Duration.ofSeconds(30)))
                        .as("the page renders both answers and its live stream is open")
                        .isTrue();
                checkPage(page.evaluate(PROBE), answers, offsets, options);

                // live: an answer made after the page loaded appears without a reload
                page.evaluate("window.engramProbe = 'same page'");
                KAFKA.produceEvents(options, List.of(query("ada", "ada-q3", "Where was the ball?")));
                answers = awaitAnswers(options, 3);
                assertThat(page.await(
                                "document.querySelector('#answers .answer[data-query-id=\"ada-q3\"]') !== null",
                                Duration.ofSeconds(30)))
                        .as("the third answer appears live")
                        .isTrue();
                assertThat(page.evaluate("window.engramProbe").asText())
                        .as("no reload")
                        .isEqualTo("same page");
                JsonNode dom = page.evaluate(PROBE);
                assertThat(dom.path("answers").get(0).path("query").asText())
                        .as("newest first")
                        .isEqualTo("ada-q3");
                assertThat(dom.path("answers").get(0).path("selected").asBoolean())
                        .as("the map follows it")
                        .isTrue();
                checkPage(dom, answers, offsets, options);

                Path png = Path.of("target", "web-view.png");
                page.screenshot(png);
                byte[] bytes = Files.readAllBytes(png);
                assertThat(bytes.length).as("screenshot size").isGreaterThan(10_000);
                assertThat(new String(bytes, 1, 3, java.nio.charset.StandardCharsets.US_ASCII))
                        .isEqualTo("PNG");
                System.out.println("web view screenshot: " + png.toAbsolutePath());

                page.navigate(server.uri());
                assertThat(page.await(
                                "[...document.querySelectorAll('#sessions .session-row a')].map(a => a.textContent)"
                                        + ".join(',') === 'ada,bob'",
                                Duration.ofSeconds(30)))
                        .as("the index lists both sessions")
                        .isTrue();
            }
        } finally {
            streams.close(Duration.ofSeconds(10));
            job.cancel().get(30, TimeUnit.SECONDS);
        }
    }

    /** The page agrees with the answers topic: texts, citation coordinates, highlights and the memory map. */
    static void checkPage(JsonNode dom, List<Answer> answers, List<Long> offsets, ResolvedOptions options) {
        assertThat(dom.path("live").asText()).isEqualTo("open");
        List<String> ids = new ArrayList<>();
        dom.path("events").forEach(e -> ids.add(e.path("id").asText()));
        List<String> expectedIds = new ArrayList<>();
        for (int i = 0; i < ADA.size(); i++) {
            expectedIds.add("ada-c" + i);
        }
        assertThat(ids).as("the session's content events only, in order").isEqualTo(expectedIds);
        for (int i = 0; i < ADA.size(); i++) {
            assertThat(dom.path("events").get(i).path("text").asText()).isEqualTo(ADA.get(i));
        }
        assertThat(dom.path("answers")).hasSize(answers.size());
        boolean anyCitation = false;
        for (Answer a : answers) {
            JsonNode card = null;
            for (JsonNode c : dom.path("answers")) {
                if (c.path("query").asText().equals(a.getQueryId())) {
                    card = c;
                }
            }
            assertThat(card).as("a card for %s", a.getQueryId()).isNotNull();
            assertThat(card.path("text").asText()).isEqualTo(a.getText());
            List<String> coords = new ArrayList<>();
            card.path("coords").forEach(c -> coords.add(c.asText()));
            List<String> expected = a.getCitations().stream()
                    .map(c -> c.getSegment().getSource())
                    .map(s -> s.getTopic() + "/" + s.getPartition() + "/" + s.getOffset())
                    .toList();
            assertThat(coords)
                    .as("citations of %s with topic/partition/offset", a.getQueryId())
                    .isEqualTo(expected);
            for (Citation c : a.getCitations()) {
                SourceSegment s = c.getSegment();
                assertThat(s.getSource().getTopic()).isEqualTo(options.get(KafkaOptions.INPUT_TOPIC));
                anyCitation = true;
                if (s.getCharEnd() <= s.getCharStart()) {
                    continue;
                }
                String eventText = ADA.get(ids.indexOf(s.getEventId()));
                String span = eventText.substring(s.getCharStart(), s.getCharEnd());
                assertThat(span)
                        .as("%s %s cites a whole paragraph, the segment it is", a.getQueryId(), c.getMarker())
                        .isEqualTo(eventText);
                String hover = "offset " + s.getSource().getOffset();
                String chars = "chars " + s.getCharStart() + "–" + s.getCharEnd();
                boolean highlighted = false;
                for (JsonNode m : dom.path("marks")) {
                    if (m.path("event").asText().equals(s.getEventId())
                            && m.path("title").asText().contains(hover)
                            && m.path("title").asText().contains(chars)
                            && m.path("title").asText().contains(a.getQueryId())) {
                        assertThat(span)
                                .as("highlighted piece of %s %s", a.getQueryId(), c.getMarker())
                                .contains(m.path("text").asText());
                        highlighted = true;
                    }
                }
                assertThat(highlighted)
                        .as(
                                "%s %s highlighted in %s with its coordinates on hover",
                                a.getQueryId(), c.getMarker(), s.getEventId())
                        .isTrue();
            }
        }
        assertThat(anyCitation).as("the answers cite something").isTrue();

        assertThat(dom.path("mapEvents").asInt())
                .as("one map cell per content event")
                .isEqualTo(ADA.size());
        Answer newest = answers.getLast();
        TreeSet<Integer> cited = new TreeSet<>();
        newest.getCitations().forEach(c -> cited.add(ids.indexOf(c.getSegment().getEventId())));
        List<Integer> mapCited = new ArrayList<>();
        dom.path("mapCited").forEach(n -> mapCited.add(n.asInt()));
        assertThat(mapCited).as("cells cited by the selected (newest) answer").containsExactlyElementsOf(cited);
        // retrieved: the events the selected answer's memory spans came from; with full attention (the default
        // policy) every event before the question, each with the token range and layer count on hover
        TreeSet<Integer> retrieved = new TreeSet<>();
        for (io.engram.schemas.RetrievedSpan r : newest.getRetrieved()) {
            for (io.engram.schemas.SourceCoordinates c : r.getSources()) {
                assertThat(c.getTopic()).isEqualTo(options.get(KafkaOptions.INPUT_TOPIC));
                retrieved.add(offsets.indexOf(c.getOffset()));
            }
        }
        assertThat(newest.getRetrieved())
                .as("the newest answer's retrieved spans")
                .isNotEmpty();
        assertThat(newest.getRetrieved().getLast().getEndToken())
                .as("up to the question")
                .isEqualTo(newest.getMemoryTokens());
        assertThat(retrieved)
                .as("full attention retrieves every event before the question")
                .containsExactlyElementsOf(
                        java.util.stream.IntStream.range(0, ADA.size()).boxed().toList());
        List<Integer> mapRetrieved = new ArrayList<>();
        for (JsonNode m : dom.path("mapRetrieved")) {
            mapRetrieved.add(m.path("index").asInt());
            assertThat(m.path("title").asText())
                    .as("hover of retrieved cell %s", m.path("index"))
                    .containsPattern("retrieved for " + newest.getQueryId() + ": tokens \\d+–\\d+ by \\d+ layers?");
        }
        assertThat(mapRetrieved)
                .as("cells retrieved for the selected (newest) answer")
                .containsExactlyElementsOf(retrieved);
        assertThat(dom.path("legend").asText()).contains("retrieved for the selected answer");
        assertThat(dom.path("episodes").asInt())
                .as("episode summaries on the map")
                .isGreaterThanOrEqualTo(1);
    }

    static Path model() throws Exception {
        Path stories = SharedFiles.root().resolve("models/stories260K-hf");
        if (Files.isRegularFile(stories.resolve("config.json"))) {
            System.out.println("web view test: model " + stories);
            return stories;
        }
        System.out.println("web view test: no " + stories + "; a generated tiny model instead");
        return TinyModels.write(KAFKA.newDir("model"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
    }

    static JobClient startJob(ResolvedOptions options) throws Exception {
        Configuration conf = EngramJob.flinkConfiguration(options);
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1, conf);
        EngramJob.build(
                env,
                EngramSources.kafka(options),
                EngramSinks.kafka(options),
                options,
                EngineSessionStage.from(options));
        return env.executeAsync("web-view-it");
    }

    static EngramEvent content(String session, String id, String text) {
        return EngramEvent.newBuilder()
                .setSessionId(session)
                .setEventId(id)
                .setTimestampMs(System.currentTimeMillis())
                .setPayload(ContentEvent.newBuilder()
                        .setKind(ContentKind.DOCUMENT_CHUNK)
                        .setText(text)
                        .setDocumentId("story.txt")
                        .setChunkIndex(Integer.parseInt(id.substring(id.length() - 1)))
                        .build())
                .build();
    }

    static EngramEvent query(String session, String id, String question) {
        return EngramEvent.newBuilder()
                .setSessionId(session)
                .setEventId(id)
                .setTimestampMs(System.currentTimeMillis())
                .setPayload(new QueryEvent(
                        id,
                        question,
                        GenerationOptions.newBuilder()
                                .setMaxNewTokens(16)
                                .setTemperature(0f)
                                .setStop(List.of("\n"))
                                .build()))
                .build();
    }

    /** The first {@code n} answers on the answers topic (read_committed), in topic order. */
    static List<Answer> awaitAnswers(ResolvedOptions options, int n) {
        try (KafkaConsumer<byte[], byte[]> c = KAFKA.readCommitted(options.get(KafkaOptions.ANSWERS_TOPIC))) {
            List<ConsumerRecord<byte[], byte[]>> records = KafkaBroker.pollUntil(c, r -> r.size() >= n, ANSWER_WAIT);
            assertThat(records).as("answers within %s", ANSWER_WAIT).hasSizeGreaterThanOrEqualTo(n);
            List<Answer> out = new ArrayList<>();
            for (ConsumerRecord<byte[], byte[]> r : records) {
                try {
                    out.add(Answer.getDecoder().decode(r.value()));
                } catch (Exception e) {
                    throw new AssertionError("undecodable answer at offset " + r.offset(), e);
                }
            }
            return out;
        }
    }

    static int apiAnswers(QueryServer server, String session) {
        HttpResponse<String> r = get(server, "/api/sessions/" + session);
        try {
            return r.statusCode() == 200
                    ? JSON.readTree(r.body()).path("answers").size()
                    : -1;
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    static HttpResponse<String> get(QueryServer server, String path) {
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
}
