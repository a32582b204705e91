package io.engram.topology.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.EngramEvent;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.io.BufferedReader;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram produce}: streams a text file, a JSONL dialogue or stdin into the input topic as content events of
 * one session, keyed by the session id. Text becomes DOCUMENT_CHUNK events cut at paragraphs ({@link
 * ParagraphChunker}); JSONL lines {@code {"role":..,"speaker":..,"text":..}} become DIALOGUE_TURN events.
 */
@Command(
        name = "produce",
        description = "Stream a text file, a JSONL dialogue or stdin into the input topic as "
                + "content events of one session.")
public final class ProduceCommand implements Callable<Integer> {

    /** How to read the input. */
    public enum Format {
        AUTO,
        TEXT,
        JSONL
    }

    @ParentCommand
    EngramCli root;

    @Option(
            names = {"-s", "--session"},
            required = true,
            description = "Session id (the Kafka key).")
    String session;

    @Parameters(index = "0", arity = "0..1", paramLabel = "FILE", description = "Input file; '-' or none: stdin.")
    String file = "-";

    @Option(names = "--format", description = "AUTO (jsonl for *.jsonl, else text), TEXT or JSONL. Default: AUTO.")
    Format format = Format.AUTO;

    @Option(names = "--document-id", description = "Document id of the chunks (default: the file name, or 'stdin').")
    String documentId;

    @Option(names = "--max-chunk-chars", description = "Sets engram.produce.max-chunk-chars.")
    Integer maxChunkChars;

    @Option(
            names = {"-b", "--bootstrap-servers"},
            description = "Sets engram.kafka.bootstrap-servers.")
    String bootstrapServers;

    private final ObjectMapper json = new ObjectMapper();

    @Override
    public Integer call() throws IOException {
        CliContext ctx = root.context();
        if (session == null || session.isBlank()) {
            throw new CliException(ExitCode.INVALID_INPUT, "--session must not be blank");
        }
        Map<String, String> flags = new HashMap<>();
        if (maxChunkChars != null) {
            flags.put(CliOptions.MAX_CHUNK_CHARS.key(), maxChunkChars.toString());
        }
        if (bootstrapServers != null) {
            flags.put(KafkaOptions.BOOTSTRAP_SERVERS.key(), bootstrapServers);
        }
        ResolvedOptions options = root.options(flags);
        boolean stdin = file.equals("-");
        Format fmt = format != Format.AUTO
                ? format
                : !stdin && file.toLowerCase(Locale.ROOT).endsWith(".jsonl") ? Format.JSONL : Format.TEXT;
        String docId = documentId != null
                ? documentId
                : stdin ? "stdin" : Path.of(file).getFileName().toString();
        long total = -1;
        InputStream raw;
        if (stdin) {
            raw = ctx.stdin();
        } else {
            try {
                total = Files.size(Path.of(file));
                raw = Files.newInputStream(Path.of(file));
            } catch (NoSuchFileException e) {
                throw new CliException(ExitCode.INVALID_INPUT, "no such file: " + file);
            }
        }
        String topic = options.get(KafkaOptions.INPUT_TOPIC);
        Counting counting = new Counting(raw);
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(
                        counting,
                        StandardCharsets.UTF_8
                                .newDecoder()
                                .onMalformedInput(CodingErrorAction.REPORT)
                                .onUnmappableCharacter(CodingErrorAction.REPORT)));
                KafkaProducer<byte[], byte[]> producer = KafkaClients.producer(options);
                Progress progress = Progress.forContext(ctx, "producing " + (stdin ? "stdin" : file))) {
            Sender sender = new Sender(producer, topic, progress, counting, total);
            if (fmt == Format.JSONL) {
                readDialogue(reader, sender);
            } else {
                ParagraphChunker chunker = new ParagraphChunker(
                        options.get(CliOptions.MAX_CHUNK_CHARS),
                        chunk -> sender.send(ContentEvent.newBuilder()
                                .setKind(ContentKind.DOCUMENT_CHUNK)
                                .setText(chunk)
                                .setDocumentId(docId)
                                .setChunkIndex(sender.sent)
                                .build()));
                readLines(reader, chunker::line);
                chunker.finish();
            }
            sender.finish();
            ctx.out()
                    .printf(
                            "produced %d %s events to %s for session %s%n",
                            sender.sent, fmt == Format.JSONL ? "dialogue-turn" : "document-chunk", topic, session);
            ctx.out().flush();
        }
        return ExitCode.OK.code();
    }

    private void readLines(BufferedReader reader, java.util.function.Consumer<String> lines) throws IOException {
        int n = 0;
        try {
            for (String line; (line = reader.readLine()) != null; ) {
                n++;
                lines.accept(line);
            }
        } catch (CharacterCodingException e) {
            throw new CliException(ExitCode.INVALID_INPUT, "%s is not valid UTF-8 (after line %d)".formatted(file, n));
        }
    }

    private void readDialogue(BufferedReader reader, Sender sender) throws IOException {
        int[] lineNo = {0};
        readLines(reader, line -> {
            lineNo[0]++;
            if (line.isBlank()) {
                return;
            }
            JsonNode turn;
            try {
                turn = json.readTree(line);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw invalidLine(lineNo[0], sender, "not JSON: " + e.getOriginalMessage());
            }
            if (!turn.isObject()
                    || !turn.path("text").isTextual()
                    || turn.get("text").asText().isBlank()) {
                throw invalidLine(
                        lineNo[0],
                        sender,
                        "expected {\"role\":..,\"speaker\":..,\"text\":..} with a " + "non-blank text");
            }
            sender.send(ContentEvent.newBuilder()
                    .setKind(ContentKind.DIALOGUE_TURN)
                    .setText(turn.get("text").asText())
                    .setRole(turn.path("role").isTextual() ? turn.get("role").asText() : null)
                    .setSpeaker(
                            turn.path("speaker").isTextual()
                                    ? turn.get("speaker").asText()
                                    : null)
                    .build());
        });
    }

    private CliException invalidLine(int line, Sender sender, String what) {
        sender.finish();
        return new CliException(
                ExitCode.INVALID_INPUT,
                "%s line %d: %s (%d events before it were produced)".formatted(file, line, what, sender.sent));
    }

    /** Sends events in order and remembers the first failure, which ends the command. */
    private final class Sender {
        private final KafkaProducer<byte[], byte[]> producer;
        private final String topic;
        private final Progress progress;
        private final Counting counting;
        private final long total;
        private final AtomicReference<Exception> failure = new AtomicReference<>();
        int sent;

        Sender(KafkaProducer<byte[], byte[]> producer, String topic, Progress progress, Counting counting, long total) {
            this.producer = producer;
            this.topic = topic;
            this.progress = progress;
            this.counting = counting;
            this.total = total;
        }

        void send(ContentEvent content) {
            checkFailure();
            EngramEvent event = EngramEvent.newBuilder()
                    .setSessionId(session)
                    .setEventId(UUID.randomUUID().toString())
                    .setTimestampMs(System.currentTimeMillis())
                    .setPayload(content)
                    .build();
            byte[] value;
            try {
                ByteBuffer b = EngramEvent.getEncoder().encode(event);
                value = new byte[b.remaining()];
                b.get(value);
            } catch (IOException e) {
                throw new CliException(ExitCode.INTERNAL, "encoding event " + sent + ": " + e.getMessage(), e);
            }
            try {
                producer.send(
                        new ProducerRecord<>(topic, session.getBytes(StandardCharsets.UTF_8), value), (metadata, e) -> {
                            if (e != null) {
                                failure.compareAndSet(null, e);
                            }
                        });
            } catch (org.apache.kafka.common.KafkaException e) {
                throw unavailable(e);
            }
            sent++;
            progress.update(counting.count, total, sent);
        }

        void finish() {
            try {
                producer.flush();
            } catch (org.apache.kafka.common.KafkaException e) {
                throw unavailable(e);
            }
            checkFailure();
        }

        private void checkFailure() {
            Exception e = failure.get();
            if (e != null) {
                throw unavailable(e);
            }
        }

        private CliException unavailable(Exception e) {
            return new CliException(
                    ExitCode.UNAVAILABLE, "cannot produce to topic %s: %s".formatted(topic, e.getMessage()), e);
        }
    }

    /** Counts bytes read, for progress. */
    private static final class Counting extends FilterInputStream {
        volatile long count;

        Counting(InputStream in) {
            super(in);
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0) {
                count++;
            }
            return b;
        }

        @Override
        public int read(byte[] buf, int off, int len) throws IOException {
            int n = super.read(buf, off, len);
            if (n > 0) {
                count += n;
            }
            return n;
        }
    }
}
