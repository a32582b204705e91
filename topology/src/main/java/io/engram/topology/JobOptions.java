package io.engram.topology;

import io.engram.topology.options.Option;
import java.nio.file.Path;
import java.time.Duration;

/** Settings of the Flink job built by {@link EngramJob}. */
public final class JobOptions {

    public static final Option<Integer> PARALLELISM = Option.intKey("engram.job.parallelism")
            .defaultValue(2)
            .check(n -> n > 0, "> 0")
            .description("Parallelism of every operator of the Flink job.");

    public static final Option<Duration> CHECKPOINT_INTERVAL = Option.durationKey("engram.job.checkpoint-interval")
            .defaultValue(Duration.ofSeconds(2))
            .check(d -> d.toMillis() >= 100, ">= 100ms")
            .description("Checkpoint interval. Outputs become visible to read_committed consumers when the checkpoint "
                    + "that covers them completes, so this is also the least end-to-end latency.");

    public static final Option<Duration> CHECKPOINT_TIMEOUT = Option.durationKey("engram.job.checkpoint-timeout")
            .defaultValue(Duration.ofMinutes(5))
            .check(d -> d.toMillis() >= 1000, ">= 1s")
            .description("A checkpoint that takes longer is abandoned (and counts as a failed checkpoint). With the "
                    + "checkpoint interval it must stay under engram.kafka.transaction-timeout, or the exactly-once "
                    + "sinks' transactions could expire before the checkpoint that commits them completes.");

    public static final Option<Integer> TOLERABLE_CHECKPOINT_FAILURES = Option.intKey(
                    "engram.job.tolerable-checkpoint-failures")
            .defaultValue(3)
            .check(n -> n >= 0, ">= 0")
            .description("Consecutive failed or timed-out checkpoints the job tolerates before it restarts from "
                    + "the last completed one.");

    public static final Option<Integer> RETAINED_CHECKPOINTS = Option.intKey("engram.job.retained-checkpoints")
            .defaultValue(3)
            .check(n -> n >= 2, ">= 2")
            .description("Completed checkpoints kept (at least 2: if the latest is unreadable, the one before it "
                    + "still restores every session's memory).");

    public static final Option<String> CHECKPOINT_DIR = Option.stringKey("engram.job.checkpoint-dir")
            .noDefault()
            .description("Where checkpoints go, as a URI (file:///..., s3://...). Unset: checkpoints/ under "
                    + "engram.data-dir.");

    public static final Option<Path> DATA_DIR = Option.pathKey("engram.data-dir")
            .defaultValue(Path.of(".engram"))
            .description(
                    "Local directory for the embedded broker's logs, Kafka Streams state and (unless "
                            + "engram.job.checkpoint-dir is set) checkpoints. Relative paths are against the working directory.");

    public static final Option<Integer> MAX_EVENT_BYTES = Option.intKey("engram.decoder.max-event-bytes")
            .defaultValue(1 << 20)
            .check(n -> n >= 16, ">= 16")
            .description("Largest input record value accepted; larger ones go to the dead-letter topic as TOO_LARGE "
                    + "without being decoded.");

    public static final Option<Integer> PART_CHARS = Option.intKey("engram.decoder.part-chars")
            .defaultValue(io.engram.operators.DecoderSettings.DEFAULT_PART_CHARS)
            .check(n -> n >= 2, ">= 2")
            .description("Content events with a longer text are cut into parts of at most this many characters (before "
                    + "a space, so the parts tokenize as the whole text does), ingested one after another as one event: "
                    + "checkpoints pass between parts instead of waiting for the whole text's prefill. Citations and "
                    + "provenance keep the whole event's character offsets.");

    public static final Option<Duration> ALIGNED_CHECKPOINT_TIMEOUT = Option.durationKey(
                    "engram.job.aligned-checkpoint-timeout")
            .defaultValue(Duration.ofSeconds(10))
            .check(d -> !d.isNegative(), ">= 0")
            .description(
                    "How long a checkpoint barrier may wait for alignment behind queued input (e.g. the parts of a "
                            + "long content event) before the checkpoint turns unaligned and stores that input with it, so "
                            + "checkpoints keep completing while a long text is ingested. 0: always unaligned.");

    private JobOptions() {}
}
