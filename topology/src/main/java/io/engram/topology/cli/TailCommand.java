package io.engram.topology.cli;

import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.Summary;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
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
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram tail}: follows the answers and summaries topics (optionally attributions and dead letters),
 * read_committed, one line per record, until stopped, {@code --max-records} or {@code --timeout}.
 */
@Command(name = "tail", description = "Follow the answers and summaries topics (read_committed) and print them.")
public final class TailCommand implements Callable<Integer> {

    @ParentCommand
    EngramCli root;

    @Option(names = "--from-beginning", description = "Start at the earliest records instead of new ones.")
    boolean fromBeginning;

    @Option(names = "--attributions", description = "Also follow the attributions topic.")
    boolean attributions;

    @Option(names = "--dead-letters", description = "Also follow the dead-letter topic.")
    boolean deadLetters;

    @Option(names = "--max-records", description = "Stop after this many records.")
    Long maxRecords;

    @Option(names = "--timeout", description = "Stop after this long (e.g. 30s); default: until interrupted.")
    String timeout;

    @Option(
            names = {"-b", "--bootstrap-servers"},
            description = "Sets engram.kafka.bootstrap-servers.")
    String bootstrapServers;

    @Override
    public Integer call() {
        CliContext ctx = root.context();
        Map<String, String> flags = new HashMap<>();
        if (bootstrapServers != null) {
            flags.put(KafkaOptions.BOOTSTRAP_SERVERS.key(), bootstrapServers);
        }
        ResolvedOptions options = root.options(flags);
        Duration limit = timeout == null
                ? null
                : io.engram.topology.options.Option.durationKey("engram.tail.timeout")
                        .noDefault()
                        .description("--timeout")
                        .parse(timeout, "--timeout");
        Map<String, BinaryMessageDecoder<?>> topics = new HashMap<>();
        topics.put(options.get(KafkaOptions.ANSWERS_TOPIC), EngramSchemas.decoder(Answer.class));
        topics.put(options.get(KafkaOptions.SUMMARIES_TOPIC), EngramSchemas.decoder(Summary.class));
        if (attributions) {
            topics.put(options.get(KafkaOptions.ATTRIBUTIONS_TOPIC), EngramSchemas.decoder(Attribution.class));
        }
        if (deadLetters) {
            topics.put(options.get(KafkaOptions.DEAD_LETTER_TOPIC), EngramSchemas.decoder(DeadLetter.class));
        }
        Instant deadline = limit == null ? Instant.MAX : Instant.now().plus(limit);
        long printed = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = KafkaClients.readCommittedConsumer(options)) {
            List<TopicPartition> parts = new ArrayList<>();
            for (String topic : topics.keySet()) {
                consumer.partitionsFor(topic, Duration.ofSeconds(15))
                        .forEach(p -> parts.add(new TopicPartition(topic, p.partition())));
            }
            consumer.assign(parts);
            if (fromBeginning) {
                consumer.seekToBeginning(parts);
            } else {
                consumer.seekToEnd(parts);
            }
            ctx.err().printf("following %s on %s%n", topics.keySet(), options.get(KafkaOptions.BOOTSTRAP_SERVERS));
            ctx.err().flush();
            while (!ctx.stop().isDone()
                    && Instant.now().isBefore(deadline)
                    && (maxRecords == null || printed < maxRecords)) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    ctx.out().println(line(r, topics.get(r.topic())));
                    printed++;
                    if (maxRecords != null && printed >= maxRecords) {
                        break;
                    }
                }
                ctx.out().flush();
            }
        } catch (org.apache.kafka.common.errors.TimeoutException e) {
            throw new CliException(
                    ExitCode.UNAVAILABLE,
                    "cannot reach Kafka at %s: %s"
                            .formatted(options.get(KafkaOptions.BOOTSTRAP_SERVERS), e.getMessage()),
                    e);
        }
        return ExitCode.OK.code();
    }

    private static String line(ConsumerRecord<byte[], byte[]> r, BinaryMessageDecoder<?> decoder) {
        try {
            return OutputFormat.tailLine(decoder.decode(r.value()));
        } catch (IOException | RuntimeException e) {
            return "undecodable record %s-%d@%d: %s".formatted(r.topic(), r.partition(), r.offset(), e.getMessage());
        }
    }
}
