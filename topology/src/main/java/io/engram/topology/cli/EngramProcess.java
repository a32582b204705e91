package io.engram.topology.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code engram run} in a child JVM on a fixed data directory and Kafka port, so that it can be killed with SIGKILL and
 * started again over what it left behind: the embedded broker's logs and the retained Flink checkpoints. Used by
 * {@code engram bench reliability}; the child's output goes to a log file next to its data directory.
 */
final class EngramProcess implements AutoCloseable {
    /** What {@code engram run} prints once the broker, the job and the query app are up. */
    private static final String READY = "  queries: ";

    private static final String RESTORED = "  memory:  restored from ";

    private final Path dataDir;
    private final int kafkaPort;
    private final Map<String, String> settings;
    private final Path log;
    private Process process;
    private int starts;
    private int restores;

    EngramProcess(Path dataDir, int kafkaPort, Map<String, String> settings) {
        this.dataDir = dataDir;
        this.kafkaPort = kafkaPort;
        this.settings = settings;
        this.log = dataDir.resolveSibling(dataDir.getFileName() + ".log");
    }

    String bootstrap() {
        return "localhost:" + kafkaPort;
    }

    Path log() {
        return log;
    }

    /** Times the child restored its memory from a checkpoint its previous life completed. */
    int restores() {
        return restores;
    }

    /** Starts the child and waits until it serves (its broker, job and query app are up). */
    void start(Duration timeout) throws IOException, InterruptedException {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("engram run is already running (pid " + process.pid() + ")");
        }
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules",
                "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow",
                "-Dorg.apache.avro.SERIALIZABLE_PACKAGES=io.engram.schemas",
                "-Dai.djl.offline=true",
                "-Xmx2g",
                "-cp",
                System.getProperty("java.class.path"),
                EngramCli.class.getName()));
        settings.forEach((k, v) -> cmd.addAll(List.of("--set", k + "=" + v)));
        cmd.addAll(List.of(
                "--set",
                "engram.data-dir=" + dataDir,
                "--set",
                "engram.embedded.kafka-port=" + kafkaPort,
                "--set",
                "engram.queries.http-port=0",
                "run"));
        long offset = Files.exists(log) ? Files.size(log) : 0;
        Files.writeString(
                log,
                "=== start " + (starts + 1) + " at " + Instant.now() + "\n",
                StandardCharsets.UTF_8,
                java.nio.file.StandardOpenOption.CREATE,
                java.nio.file.StandardOpenOption.APPEND);
        process = new ProcessBuilder(cmd)
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .start();
        starts++;
        Instant deadline = Instant.now().plus(timeout);
        while (Instant.now().isBefore(deadline)) {
            String out = since(offset);
            if (out.contains(READY)) {
                if (out.contains(RESTORED)) {
                    restores++;
                }
                return;
            }
            if (!process.isAlive()) {
                throw new IOException(
                        "engram run exited with " + process.exitValue() + " before it served; see " + log);
            }
            Thread.sleep(200);
        }
        process.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        throw new IOException("engram run did not serve within " + timeout + "; see " + log);
    }

    /** SIGKILL: no shutdown hook runs, nothing is flushed or closed; waits until the process is gone. */
    void kill() throws InterruptedException {
        if (process != null) {
            process.destroyForcibly();
            process.waitFor(30, TimeUnit.SECONDS);
        }
    }

    /** SIGTERM, as Ctrl-C: the run closes the query app, the job (its last checkpoint retained) and the broker. */
    @Override
    public void close() throws InterruptedException {
        if (process != null && process.isAlive()) {
            process.destroy();
            if (!process.waitFor(60, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
            }
        }
    }

    private String since(long offset) throws IOException {
        byte[] all = Files.readAllBytes(log);
        return new String(
                all,
                (int) Math.min(offset, all.length),
                (int) Math.max(0, all.length - offset),
                StandardCharsets.UTF_8);
    }
}
