package io.engram.topology.cli;

import java.util.Map;
import picocli.CommandLine.Option;

/** The {@code --jobmanager URL} flag of the cluster commands; it overrides {@link ClusterOptions#JOBMANAGER}. */
final class JobManagerFlag {

    @Option(
            names = "--jobmanager",
            paramLabel = "URL",
            description = "REST address of the Flink JobManager, e.g. http://flink-jobmanager:8081 "
                    + "(default: engram.flink.jobmanager).")
    String jobManager;

    /** The flag as a command-line option value, for {@code EngramCli.options(...)}; empty when not given. */
    Map<String, String> asOptions() {
        return jobManager == null ? Map.of() : Map.of(ClusterOptions.JOBMANAGER.key(), jobManager);
    }
}
