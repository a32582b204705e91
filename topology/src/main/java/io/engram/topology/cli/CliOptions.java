package io.engram.topology.cli;

import io.engram.topology.options.Option;
import java.time.Duration;

/** Settings of the CLI's client commands. */
public final class CliOptions {

    public static final Option<Integer> MAX_CHUNK_CHARS = Option.intKey("engram.produce.max-chunk-chars")
            .defaultValue(2000)
            .check(n -> n >= 16, ">= 16")
            .description("engram produce: most characters per document chunk. Paragraphs are packed into chunks up "
                    + "to this size; a longer paragraph is split at whitespace.");

    public static final Option<Duration> ASK_TIMEOUT = Option.durationKey("engram.ask.timeout")
            .defaultValue(Duration.ofMinutes(2))
            .check(d -> d.toMillis() > 0, "> 0")
            .description("engram ask: how long to wait for the answer before giving up (exit code 3).");

    private CliOptions() {}
}
