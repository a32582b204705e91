package io.engram.topology.cli;

import io.engram.topology.SessionStageFactory;
import java.io.InputStream;
import java.io.PrintWriter;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * What the commands get from the process, injected so tests can supply their own.
 *
 * @param out results (stdout)
 * @param err messages, progress and logs for the user (stderr)
 * @param env the process environment, read only by the option resolver
 * @param stdin input of {@code produce -}
 * @param console whether stdout is a terminal (progress bar) or not (periodic log lines)
 * @param sessionStages creates the session stage of {@code run}
 * @param stop completes when a long-running command ({@code run}, {@code tail}) should stop
 */
public record CliContext(
        PrintWriter out,
        PrintWriter err,
        Map<String, String> env,
        InputStream stdin,
        boolean console,
        SessionStageFactory sessionStages,
        CompletableFuture<Void> stop) {}
