package io.engram.topology.cli;

import io.engram.topology.options.ResolvedOptions;
import java.time.Duration;
import java.util.concurrent.Callable;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram cancel JOB_ID}: cancels a job without a savepoint and waits until the cluster reports it terminal, then
 * prints its final state ({@code CANCELED}). Its latest checkpoint is kept (the job retains checkpoints on
 * cancellation), so it can still be resumed from there; {@code engram savepoint --stop} is the planned way to stop.
 */
@Command(name = "cancel", description = "Cancel a job on a Flink cluster (no savepoint) and wait until it has stopped.")
public final class CancelCommand implements Callable<Integer> {

    private static final Duration POLL = Duration.ofMillis(200);

    @ParentCommand
    EngramCli root;

    @Mixin
    JobManagerFlag flag;

    @Parameters(paramLabel = "JOB_ID", description = "The job to cancel (engram status lists them).")
    String jobId;

    @Override
    public Integer call() throws InterruptedException {
        CliContext ctx = root.context();
        ResolvedOptions options = root.options(flag.asOptions());
        JobID id = FlinkRest.jobId(jobId);
        try (FlinkRest rest = FlinkRest.connect(options)) {
            JobStatus before = rest.job(id).getJobState();
            if (before.isGloballyTerminalState()) {
                throw new CliException(ExitCode.INVALID_INPUT, "job %s is already %s".formatted(id, before));
            }
            rest.await(rest.client().cancel(id), rest.timeout(), "cancelling job " + id);
            JobStatus state = awaitTerminal(rest, id);
            ctx.err().printf("job %s on %s: %s -> %s%n", id, rest.address(), before, state);
            ctx.out().println(state);
        }
        ctx.out().flush();
        ctx.err().flush();
        return ExitCode.OK.code();
    }

    /** Polls the job's state until it is globally terminal, within {@link ClusterOptions#OPERATION_TIMEOUT}. */
    static JobStatus awaitTerminal(FlinkRest rest, JobID id) throws InterruptedException {
        long deadline = System.nanoTime() + rest.timeout().toNanos();
        while (true) {
            JobStatus state =
                    rest.await(rest.client().getJobStatus(id), rest.timeout(), "reading the state of job " + id);
            if (state.isGloballyTerminalState()) {
                return state;
            }
            if (System.nanoTime() > deadline) {
                throw new CliException(
                        ExitCode.UNAVAILABLE,
                        "job %s is still %s after %s (engram.flink.operation-timeout)"
                                .formatted(id, state, rest.timeout()));
            }
            Thread.sleep(POLL.toMillis());
        }
    }
}
