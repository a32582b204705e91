package io.engram.topology.cli;

import io.engram.topology.options.ResolvedOptions;
import java.util.concurrent.Callable;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.core.execution.SavepointFormatType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram savepoint JOB_ID [--dir D] [--stop]}: triggers a savepoint of a running job (or, with {@code --stop},
 * stop-with-savepoint), waits until the cluster's asynchronous operation completes (Flink's client polls its status
 * resource) and prints the savepoint's path, which {@code engram submit --from-savepoint} takes. Savepoints are in
 * Flink's canonical format, so they restore across state backends. The savepoint holds all keyed state: every
 * session's memory.
 */
@Command(
        name = "savepoint",
        description = "Take a savepoint of a job (--stop: and stop it); prints the savepoint path.")
public final class SavepointCommand implements Callable<Integer> {

    @ParentCommand
    EngramCli root;

    @Mixin
    JobManagerFlag flag;

    @Parameters(paramLabel = "JOB_ID", description = "The job (engram status lists them).")
    String jobId;

    @Option(
            names = "--dir",
            paramLabel = "URI",
            description =
                    "Target directory as the JobManager and TaskManagers see it (file:///..., s3://...); default: "
                            + "the cluster's execution.checkpointing.savepoint-dir.")
    String dir;

    @Option(
            names = "--stop",
            description = "Stop the job with the savepoint (sources stop first, so no output is "
                    + "produced after it); without it the job keeps running.")
    boolean stop;

    @Override
    public Integer call() {
        CliContext ctx = root.context();
        ResolvedOptions options = root.options(flag.asOptions());
        JobID id = FlinkRest.jobId(jobId);
        if (dir != null && dir.isBlank()) {
            throw new CliException(ExitCode.INVALID_INPUT, "--dir is empty; give a directory URI or leave --dir out");
        }
        try (FlinkRest rest = FlinkRest.connect(options)) {
            JobStatus state = rest.job(id).getJobState();
            if (state != JobStatus.RUNNING) {
                throw new CliException(
                        ExitCode.INVALID_INPUT,
                        "job %s is %s; only a RUNNING job can take a savepoint".formatted(id, state));
            }
            ctx.err()
                    .printf(
                            "%s job %s on %s (target: %s) ...%n",
                            stop ? "stopping with a savepoint" : "taking a savepoint of",
                            id,
                            rest.address(),
                            dir == null ? "the cluster's savepoint dir" : dir);
            ctx.err().flush();
            String what = (stop ? "stop-with-savepoint of job " : "savepoint of job ") + id;
            String path;
            try {
                path = rest.await(
                        stop
                                ? rest.client().stopWithSavepoint(id, false, dir, SavepointFormatType.CANONICAL)
                                : rest.client().triggerSavepoint(id, dir, SavepointFormatType.CANONICAL),
                        rest.timeout(),
                        what);
            } catch (CliException e) {
                throw dir == null && mentionsMissingDir(e)
                        ? new CliException(
                                ExitCode.INVALID_INPUT,
                                "no --dir given and "
                                        + "the cluster has no execution.checkpointing.savepoint-dir; pass --dir URI",
                                e)
                        : e;
            }
            if (stop) {
                ctx.err().printf("job %s: %s%n", id, CancelCommand.awaitTerminal(rest, id));
            }
            ctx.out().println(path);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException(ExitCode.UNAVAILABLE, "interrupted while waiting for job " + id, e);
        }
        ctx.out().flush();
        ctx.err().flush();
        return ExitCode.OK.code();
    }

    private static boolean mentionsMissingDir(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getMessage() != null && t.getMessage().contains("savepoint directory")) {
                return true;
            }
        }
        return false;
    }
}
