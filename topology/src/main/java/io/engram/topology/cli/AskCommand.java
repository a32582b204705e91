package io.engram.topology.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.schemas.Answer;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import io.engram.topology.queries.QueryOptions;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram ask}: produces a QueryEvent for a session and waits for its Answer, via the query HTTP endpoint
 * (default) or by consuming the answers topic read_committed, then prints the text and its citations.
 */
@Command(name = "ask", description = "Ask a question of a session's memory and print the answer with its citations.")
public final class AskCommand implements Callable<Integer> {

    /** Where to wait for the answer. */
    public enum Via {
        HTTP,
        KAFKA
    }

    @ParentCommand
    EngramCli root;

    @Option(
            names = {"-s", "--session"},
            required = true,
            description = "Session id.")
    String session;

    @Parameters(arity = "1..*", paramLabel = "QUESTION", description = "The question (words are joined by spaces).")
    List<String> words = new ArrayList<>();

    @Option(names = "--max-new-tokens", description = "Most tokens to generate (default 256).")
    Integer maxNewTokens;

    @Option(names = "--temperature", description = "Sampling temperature; 0 = greedy (default).")
    Float temperature;

    @Option(names = "--top-k", description = "Sample among the k most likely tokens.")
    Integer topK;

    @Option(names = "--top-p", description = "Nucleus sampling mass in (0, 1].")
    Float topP;

    @Option(names = "--seed", description = "Sampling seed.")
    Long seed;

    @Option(names = "--stop", description = "Stop string (repeatable).")
    List<String> stop = new ArrayList<>();

    @Option(names = "--timeout", description = "Sets engram.ask.timeout (e.g. 30s, 2min).")
    String timeout;

    @Option(names = "--via", description = "HTTP (poll the query endpoint) or KAFKA (consume answers). Default: HTTP.")
    Via via = Via.HTTP;

    @Option(
            names = {"-b", "--bootstrap-servers"},
            description = "Sets engram.kafka.bootstrap-servers.")
    String bootstrapServers;

    private final ObjectMapper json = new ObjectMapper();

    @Override
    public Integer call() throws Exception {
        CliContext ctx = root.context();
        String question = String.join(" ", words).strip();
        if (session.isBlank() || question.isEmpty()) {
            throw new CliException(ExitCode.INVALID_INPUT, "session and question must not be blank");
        }
        Map<String, String> flags = new HashMap<>();
        if (timeout != null) {
            flags.put(CliOptions.ASK_TIMEOUT.key(), timeout);
        }
        if (bootstrapServers != null) {
            flags.put(KafkaOptions.BOOTSTRAP_SERVERS.key(), bootstrapServers);
        }
        ResolvedOptions options = root.options(flags);
        GenerationOptions.Builder gen = GenerationOptions.newBuilder();
        if (maxNewTokens != null) {
            gen.setMaxNewTokens(maxNewTokens);
        }
        if (temperature != null) {
            gen.setTemperature(temperature);
        }
        gen.setTopK(topK).setTopP(topP).setSeed(seed).setStop(List.copyOf(stop));
        String queryId = UUID.randomUUID().toString();
        EngramEvent event = EngramEvent.newBuilder()
                .setSessionId(session)
                .setEventId(queryId)
                .setTimestampMs(System.currentTimeMillis())
                .setPayload(new QueryEvent(queryId, question, gen.build()))
                .build();
        Instant deadline = Instant.now().plus(options.get(CliOptions.ASK_TIMEOUT));

        String answer;
        if (via == Via.KAFKA) {
            try (KafkaConsumer<byte[], byte[]> consumer = KafkaClients.readCommittedConsumer(options)) {
                String topic = options.get(KafkaOptions.ANSWERS_TOPIC);
                List<TopicPartition> parts = consumer.partitionsFor(topic, Duration.ofSeconds(15)).stream()
                        .map(p -> new TopicPartition(topic, p.partition()))
                        .collect(Collectors.toList());
                consumer.assign(parts);
                consumer.seekToEnd(parts);
                parts.forEach(consumer::position); // fix the start before the question exists
                send(options, event);
                ctx.err().printf("asked query %s; waiting for its answer on %s%n", queryId, topic);
                answer = awaitOnTopic(consumer, queryId, deadline);
            }
        } else {
            send(options, event);
            URI uri = URI.create("http://%s:%d/sessions/%s/answers/%s"
                    .formatted(
                            options.get(QueryOptions.HTTP_HOST),
                            options.get(QueryOptions.HTTP_PORT),
                            URLEncoder.encode(session, StandardCharsets.UTF_8).replace("+", "%20"),
                            URLEncoder.encode(queryId, StandardCharsets.UTF_8).replace("+", "%20")));
            ctx.err().printf("asked query %s; waiting for its answer at %s%n", queryId, uri);
            answer = awaitOverHttp(uri, options.find(QueryOptions.AUTH_TOKEN).orElse(null), deadline);
        }
        if (answer == null) {
            throw new CliException(
                    ExitCode.UNAVAILABLE,
                    "no answer to query %s within %s (is the job running?)"
                            .formatted(queryId, CliOptions.ASK_TIMEOUT.format(options.get(CliOptions.ASK_TIMEOUT))));
        }
        ctx.out().print(answer);
        ctx.out().flush();
        return ExitCode.OK.code();
    }

    private void send(ResolvedOptions options, EngramEvent event) throws Exception {
        ByteBuffer b = EngramEvent.getEncoder().encode(event);
        byte[] value = new byte[b.remaining()];
        b.get(value);
        String topic = options.get(KafkaOptions.INPUT_TOPIC);
        try (KafkaProducer<byte[], byte[]> producer = KafkaClients.producer(options)) {
            producer.send(new ProducerRecord<>(topic, session.getBytes(StandardCharsets.UTF_8), value))
                    .get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException
                | java.util.concurrent.TimeoutException
                | org.apache.kafka.common.KafkaException e) {
            throw new CliException(
                    ExitCode.UNAVAILABLE,
                    "cannot produce the query to topic %s on %s: %s"
                            .formatted(topic, options.get(KafkaOptions.BOOTSTRAP_SERVERS), e.getMessage()),
                    e);
        }
    }

    private String awaitOnTopic(KafkaConsumer<byte[], byte[]> consumer, String queryId, Instant deadline) {
        BinaryMessageDecoder<Answer> answers = EngramSchemas.decoder(Answer.class);
        while (Instant.now().isBefore(deadline)) {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                try {
                    Answer a = answers.decode(r.value());
                    if (a.getQueryId().equals(queryId) && a.getSessionId().equals(session)) {
                        return OutputFormat.answer(a);
                    }
                } catch (IOException | RuntimeException e) {
                    root.context()
                            .err()
                            .printf("skipping undecodable record %s-%d@%d%n", r.topic(), r.partition(), r.offset());
                }
            }
        }
        return null;
    }

    private String awaitOverHttp(URI uri, String token, Instant deadline) throws InterruptedException {
        HttpClient http =
                HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        HttpRequest.Builder b =
                HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(5)).GET();
        if (token != null && !token.isBlank()) {
            b.header("Authorization", "Bearer " + token);
        }
        HttpRequest request = b.build();
        String lastProblem = "no response";
        while (Instant.now().isBefore(deadline)) {
            try {
                HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
                if (response.statusCode() == 200) {
                    JsonNode body = json.readTree(response.body());
                    return OutputFormat.answer(body);
                }
                lastProblem = "HTTP " + response.statusCode();
            } catch (ConnectException e) {
                lastProblem = "connection refused";
            } catch (IOException e) {
                lastProblem = e.toString();
            }
            TimeUnit.MILLISECONDS.sleep(250); // polling interval of a user-facing wait, bounded by the deadline
        }
        root.context().err().printf("last response from %s: %s%n", uri, lastProblem);
        return null;
    }
}
