package io.engram.topology.cli;

import io.engram.schemas.Answer;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * The embedded demo: streams a sample document (shipped with Engram, our own text) into one session as content events,
 * asks questions about it, and prints each answer with its citations as it arrives on the answers topic.
 */
final class Demo {
    static final String SESSION = "demo";
    static final List<String> QUESTIONS = List.of(
            "What is the vault code of the old customs house?",
            "How many puffins did the children count?",
            "Who wrote in the log every evening?",
            // not in the document: the model says "I don't know." rather than make something up
            "What is the name of the surveyor's dog?");

    private Demo() {}

    static void run(ResolvedOptions options, PrintWriter out, PrintWriter err, Duration timeout) throws Exception {
        EngramSchemas.trustEngramClasses();
        String input = options.get(KafkaOptions.INPUT_TOPIC);
        String answersTopic = options.get(KafkaOptions.ANSWERS_TOPIC);
        List<String> chunks = new ArrayList<>();
        ParagraphChunker chunker = new ParagraphChunker(600, chunks::add);
        for (String line : document().split("\n", -1)) {
            chunker.line(line);
        }
        chunker.finish();
        try (KafkaConsumer<byte[], byte[]> consumer = KafkaClients.readCommittedConsumer(options);
                KafkaProducer<byte[], byte[]> producer = KafkaClients.producer(options)) {
            List<TopicPartition> parts = consumer.partitionsFor(answersTopic, Duration.ofSeconds(15)).stream()
                    .map(p -> new TopicPartition(answersTopic, p.partition()))
                    .toList();
            consumer.assign(parts);
            consumer.seekToEnd(parts);
            parts.forEach(consumer::position);
            String run = Long.toString(System.currentTimeMillis(), 36); // ids unique per demo run
            // the session starts empty even when engram run restored it from an earlier demo
            send(
                    producer,
                    input,
                    EngramEvent.newBuilder()
                            .setSessionId(SESSION)
                            .setEventId("demo-" + run + "-reset")
                            .setTimestampMs(System.currentTimeMillis())
                            .setPayload(new io.engram.schemas.ControlEvent(io.engram.schemas.ControlAction.RESET))
                            .build());
            for (int i = 0; i < chunks.size(); i++) {
                send(
                        producer,
                        input,
                        EngramEvent.newBuilder()
                                .setSessionId(SESSION)
                                .setEventId("demo-" + run + "-chunk-" + i)
                                .setTimestampMs(System.currentTimeMillis())
                                .setPayload(ContentEvent.newBuilder()
                                        .setKind(ContentKind.DOCUMENT_CHUNK)
                                        .setText(chunks.get(i))
                                        .setDocumentId("demo-document")
                                        .setChunkIndex(i)
                                        .build())
                                .build());
            }
            err.printf(
                    "demo: streamed %d chunks of the sample document into session '%s' on %s%n",
                    chunks.size(), SESSION, input);
            Map<String, String> asked = new LinkedHashMap<>();
            for (int i = 0; i < QUESTIONS.size(); i++) {
                String id = "demo-" + run + "-q" + (i + 1);
                asked.put(id, QUESTIONS.get(i));
                send(
                        producer,
                        input,
                        EngramEvent.newBuilder()
                                .setSessionId(SESSION)
                                .setEventId(id)
                                .setTimestampMs(System.currentTimeMillis())
                                .setPayload(new QueryEvent(
                                        id,
                                        QUESTIONS.get(i),
                                        GenerationOptions.newBuilder()
                                                .setMaxNewTokens(32)
                                                .setTemperature(0f)
                                                .setStop(List.of("\n"))
                                                .build()))
                                .build());
            }
            err.printf("demo: asked %d questions; waiting for answers on %s%n", asked.size(), answersTopic);
            Instant deadline = Instant.now().plus(timeout);
            int answered = 0;
            BinaryMessageDecoder<Answer> answers = EngramSchemas.decoder(Answer.class);
            while (answered < asked.size() && Instant.now().isBefore(deadline)) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    Answer a = answers.decode(r.value());
                    if (a.getSessionId().equals(SESSION) && asked.containsKey(a.getQueryId())) {
                        out.printf("Q: %s%n", asked.get(a.getQueryId()));
                        out.print(OutputFormat.answer(a));
                        out.println();
                        out.flush();
                        answered++;
                    }
                }
            }
            if (answered < asked.size()) {
                throw new CliException(
                        ExitCode.UNAVAILABLE,
                        "demo: only %d of %d answers arrived within %s".formatted(answered, asked.size(), timeout));
            }
        }
    }

    private static void send(KafkaProducer<byte[], byte[]> producer, String topic, EngramEvent e) throws Exception {
        ByteBuffer b = EngramEvent.getEncoder().encode(e);
        byte[] v = new byte[b.remaining()];
        b.get(v);
        producer.send(new ProducerRecord<>(topic, e.getSessionId().getBytes(StandardCharsets.UTF_8), v))
                .get(30, TimeUnit.SECONDS);
    }

    static String document() throws IOException {
        try (InputStream in = Demo.class.getResourceAsStream("demo-document.txt")) {
            if (in == null) {
                throw new IOException("demo-document.txt missing from the engram jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
