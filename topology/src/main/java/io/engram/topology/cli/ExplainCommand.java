package io.engram.topology.cli;

import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionMethod;
import io.engram.schemas.AttributionStatus;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.SourceSegment;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram explain QUERY_ID}: waits for the attribution of an answer on the attributions topic (read_committed,
 * from the beginning) and prints its segments, best first. The PRECISE record comes some time after the answer (the
 * search runs in its own operator); {@code --method fast} prints the FAST one, which comes with the answer.
 */
@Command(
        name = "explain",
        description = {
            "Print the attribution of an answer (by query id) when it is ready: which "
                    + "segments of which input events support it, best first.",
            "Reads the attributions topic; waits up to engram.ask.timeout for the PRECISE record (--method fast: the FAST one)."
        })
public final class ExplainCommand implements Callable<Integer> {

    @ParentCommand
    EngramCli root;

    @Parameters(index = "0", description = "The query id (ask prints it).")
    String queryId;

    @Option(
            names = {"-s", "--session"},
            required = true,
            description = "The session the query was asked in (query ids are per session).")
    String session;

    @Option(names = "--method", description = "PRECISE (default) or FAST.")
    AttributionMethod method = AttributionMethod.PRECISE;

    @Option(names = "--timeout", description = "Sets engram.ask.timeout (e.g. 30s, 5min).")
    String timeout;

    @Option(
            names = {"-b", "--bootstrap-servers"},
            description = "Sets engram.kafka.bootstrap-servers.")
    String bootstrapServers;

    @Override
    public Integer call() {
        if (queryId.isBlank()) {
            throw new CliException(ExitCode.INVALID_INPUT, "the query id must not be blank");
        }
        if (method == AttributionMethod.UNKNOWN) {
            throw new CliException(ExitCode.INVALID_INPUT, "--method must be PRECISE or FAST");
        }
        Map<String, String> flags = new HashMap<>();
        if (timeout != null) {
            flags.put(CliOptions.ASK_TIMEOUT.key(), timeout);
        }
        if (bootstrapServers != null) {
            flags.put(KafkaOptions.BOOTSTRAP_SERVERS.key(), bootstrapServers);
        }
        ResolvedOptions options = root.options(flags);
        String topic = options.get(KafkaOptions.ATTRIBUTIONS_TOPIC);
        Instant deadline = Instant.now().plus(options.get(CliOptions.ASK_TIMEOUT));
        BinaryMessageDecoder<Attribution> decoder = EngramSchemas.decoder(Attribution.class);
        try (KafkaConsumer<byte[], byte[]> consumer = KafkaClients.readCommittedConsumer(options)) {
            List<TopicPartition> parts = consumer.partitionsFor(topic, Duration.ofSeconds(15)).stream()
                    .map(p -> new TopicPartition(topic, p.partition()))
                    .toList();
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            root.context().err().printf("waiting for the %s attribution of query %s on %s%n", method, queryId, topic);
            while (Instant.now().isBefore(deadline)) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    Attribution a = decode(decoder, r);
                    if (a != null
                            && a.getQueryId().equals(queryId)
                            && a.getMethod() == method
                            && a.getSessionId().equals(session)) {
                        root.context().out().print(format(a));
                        root.context().out().flush();
                        return ExitCode.OK.code();
                    }
                }
            }
        } catch (org.apache.kafka.common.KafkaException e) {
            throw new CliException(
                    ExitCode.UNAVAILABLE,
                    "cannot read topic %s on %s: %s"
                            .formatted(topic, options.get(KafkaOptions.BOOTSTRAP_SERVERS), e.getMessage()),
                    e);
        }
        throw new CliException(
                ExitCode.UNAVAILABLE,
                "no %s attribution of query %s on %s within %s (is the job running with "
                                .formatted(
                                        method,
                                        queryId,
                                        topic,
                                        CliOptions.ASK_TIMEOUT.format(options.get(CliOptions.ASK_TIMEOUT)))
                        + "engram.attribution.tier including it? a precise search can take minutes)");
    }

    private Attribution decode(BinaryMessageDecoder<Attribution> decoder, ConsumerRecord<byte[], byte[]> r) {
        try {
            return decoder.decode(r.value());
        } catch (IOException | RuntimeException e) {
            root.context().err().printf("skipping undecodable record %s-%d@%d%n", r.topic(), r.partition(), r.offset());
            return null;
        }
    }

    /** A header line, then one line per segment, best first. */
    static String format(Attribution a) {
        StringBuilder sb = new StringBuilder("%s attribution of query %s in session %s (%d ms):%n"
                .formatted(a.getMethod(), a.getQueryId(), a.getSessionId(), a.getElapsedMs()));
        if (a.getStatus() == AttributionStatus.SKIPPED_BACKLOG) {
            sb.append(
                    "skipped: the session already had engram.attribution.max-pending precise searches pending when this "
                            + "answer came, so it was not searched (try --method fast, or raise the limit)\n");
        } else if (a.getSegments().isEmpty()) {
            sb.append("no supporting segments (an empty answer, or no memory to search)\n");
        }
        for (SourceSegment s : a.getSegments()) {
            sb.append('[')
                    .append(s.getRank())
                    .append("] ")
                    .append(OutputFormat.segment(s))
                    .append('\n');
        }
        return sb.toString();
    }
}
