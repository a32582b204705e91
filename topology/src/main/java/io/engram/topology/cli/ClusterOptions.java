package io.engram.topology.cli;

import io.engram.topology.options.Option;
import java.net.URI;
import java.time.Duration;

/** Settings of the commands that talk to a Flink cluster's REST API: submit, status, cancel, savepoint. */
public final class ClusterOptions {

    public static final Option<String> JOBMANAGER = Option.stringKey("engram.flink.jobmanager")
            .defaultValue("http://localhost:8081")
            .check(ClusterOptions::isRestAddress, "http://host:port")
            .description(
                    "REST address of the Flink JobManager that engram submit, status, cancel and savepoint talk to "
                            + "(their --jobmanager flag wins). The default is a JobManager on this machine's port 8081.");

    public static final Option<Duration> OPERATION_TIMEOUT = Option.durationKey("engram.flink.operation-timeout")
            .defaultValue(Duration.ofMinutes(10))
            .check(d -> d.toMillis() > 0, "> 0")
            .description("How long engram cancel and savepoint wait for the cluster to finish the operation (a "
                    + "savepoint writes all keyed state, session memory included) before giving up with exit code 3.");

    private ClusterOptions() {}

    static boolean isRestAddress(String value) {
        try {
            URI uri = URI.create(value.strip());
            return "http".equalsIgnoreCase(uri.getScheme())
                    && uri.getHost() != null
                    && uri.getPort() > 0
                    && (uri.getPath() == null
                            || uri.getPath().isEmpty()
                            || uri.getPath().equals("/"))
                    && uri.getQuery() == null;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }
}
