package io.engram.topology.cli;

import io.engram.topology.options.ResolvedOptions;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.flink.api.common.JobID;
import org.apache.flink.runtime.client.JobStatusMessage;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram status [JOB_ID]}: the jobs on a Flink cluster with their state, newest first, or only the state of one
 * job (one word, e.g. {@code RUNNING}, for scripts).
 */
@Command(name = "status", description = "List the jobs of a Flink cluster with their state (or print one job's state).")
public final class StatusCommand implements Callable<Integer> {

    private static final DateTimeFormatter STARTED =
            DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss'Z'").withZone(ZoneOffset.UTC);

    @ParentCommand
    EngramCli root;

    @Mixin
    JobManagerFlag flag;

    @Parameters(arity = "0..1", paramLabel = "JOB_ID", description = "Print only this job's state.")
    String jobId;

    @Override
    public Integer call() {
        CliContext ctx = root.context();
        ResolvedOptions options = root.options(flag.asOptions());
        JobID id = jobId == null ? null : FlinkRest.jobId(jobId);
        try (FlinkRest rest = FlinkRest.connect(options)) {
            if (id != null) {
                ctx.out().println(rest.job(id).getJobState());
            } else {
                Collection<JobStatusMessage> jobs =
                        rest.await(rest.client().listJobs(), rest.timeout(), "listing jobs");
                print(jobs, ctx);
                if (jobs.isEmpty()) {
                    ctx.err().println("no jobs on " + rest.address());
                }
            }
        }
        ctx.out().flush();
        ctx.err().flush();
        return ExitCode.OK.code();
    }

    private static void print(Collection<JobStatusMessage> jobs, CliContext ctx) {
        if (jobs.isEmpty()) {
            return;
        }
        List<JobStatusMessage> sorted = jobs.stream()
                .sorted(Comparator.comparingLong(JobStatusMessage::getStartTime).reversed())
                .toList();
        String format = "%-32s  %-12s  %-20s  %s%n";
        ctx.out().printf(format, "JOB_ID", "STATE", "STARTED", "NAME");
        for (JobStatusMessage j : sorted) {
            ctx.out()
                    .printf(
                            format,
                            j.getJobId(),
                            j.getJobState(),
                            STARTED.format(Instant.ofEpochMilli(j.getStartTime())),
                            j.getJobName());
        }
    }
}
