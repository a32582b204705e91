package io.engram.topology.cli;

import io.engram.topology.options.ResolvedOptions;
import java.net.ConnectException;
import java.net.URI;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.flink.api.common.JobID;
import org.apache.flink.client.deployment.StandaloneClusterId;
import org.apache.flink.client.program.rest.RestClusterClient;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.runtime.client.JobStatusMessage;
import org.apache.flink.runtime.rest.util.RestClientException;

/**
 * A connection to one Flink cluster's REST API (Flink's own {@link RestClusterClient}), with the CLI's error mapping:
 * an unreachable JobManager or an operation that outlasts {@link ClusterOptions#OPERATION_TIMEOUT} is
 * {@link ExitCode#UNAVAILABLE}, an unknown job id {@link ExitCode#INVALID_INPUT}. Not thread-safe; close it.
 */
final class FlinkRest implements AutoCloseable {

    private final URI address;
    private final Duration timeout;
    private final RestClusterClient<StandaloneClusterId> client;

    private FlinkRest(URI address, Duration timeout, RestClusterClient<StandaloneClusterId> client) {
        this.address = address;
        this.timeout = timeout;
        this.client = client;
    }

    /**
     * A client for {@link ClusterOptions#JOBMANAGER} (which {@link JobManagerFlag} overrides). Nothing is sent yet.
     */
    static FlinkRest connect(ResolvedOptions options) {
        URI uri = address(options);
        Configuration conf = new Configuration();
        conf.set(RestOptions.ADDRESS, uri.getHost());
        conf.set(RestOptions.PORT, uri.getPort());
        // fail within seconds when nothing listens, instead of Flink's default of 20 tries
        conf.set(RestOptions.RETRY_MAX_ATTEMPTS, 2);
        conf.set(RestOptions.RETRY_DELAY, Duration.ofMillis(500));
        try {
            return new FlinkRest(
                    uri,
                    options.get(ClusterOptions.OPERATION_TIMEOUT),
                    new RestClusterClient<>(conf, StandaloneClusterId.getInstance()));
        } catch (Exception e) {
            throw new CliException(
                    ExitCode.INTERNAL, "cannot create a REST client for " + uri + ": " + e.getMessage(), e);
        }
    }

    /** {@link ClusterOptions#JOBMANAGER} as a URI (already validated by the option). */
    static URI address(ResolvedOptions options) {
        return URI.create(options.get(ClusterOptions.JOBMANAGER).strip());
    }

    /** Parses a job id as Flink prints it (32 hex digits). */
    static JobID jobId(String text) {
        try {
            return JobID.fromHexString(text.strip());
        } catch (IllegalArgumentException e) {
            throw new CliException(
                    ExitCode.INVALID_INPUT,
                    "'" + text + "' is not a Flink job id (32 hex digits, as "
                            + "engram submit and engram status print them)",
                    e);
        }
    }

    /**
     * The job's entry in the cluster's job list (running and finished jobs the JobManager still holds).
     *
     * @throws CliException INVALID_INPUT when the cluster has no such job
     */
    JobStatusMessage job(JobID id) {
        return await(client.listJobs(), timeout, "listing jobs").stream()
                .filter(j -> j.getJobId().equals(id))
                .findFirst()
                .orElseThrow(() -> new CliException(
                        ExitCode.INVALID_INPUT, "%s has no job %s (engram status lists them)".formatted(address, id)));
    }

    RestClusterClient<StandaloneClusterId> client() {
        return client;
    }

    URI address() {
        return address;
    }

    Duration timeout() {
        return timeout;
    }

    /**
     * Waits for {@code request} up to {@code limit}, translating failures into {@link CliException}s that say what
     * {@code what} was (e.g. "listing jobs").
     */
    <T> T await(CompletableFuture<T> request, Duration limit, String what) {
        try {
            return request.get(limit.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            request.cancel(true);
            throw new CliException(
                    ExitCode.UNAVAILABLE,
                    "%s on %s did not finish within %s (engram.flink.operation-timeout)"
                            .formatted(what, address, limit),
                    e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException(ExitCode.UNAVAILABLE, what + " was interrupted", e);
        } catch (ExecutionException e) {
            throw failure(what, e.getCause());
        }
    }

    private CliException failure(String what, Throwable cause) {
        for (Throwable t = cause; t != null; t = t.getCause()) {
            if (t instanceof RestClientException r && r.getHttpResponseStatus().code() == 404) {
                return new CliException(
                        ExitCode.INVALID_INPUT,
                        "%s: %s has no such job (%s)".formatted(what, address, firstLine(r.getMessage())),
                        cause);
            }
            if (t instanceof ConnectException) {
                return new CliException(
                        ExitCode.UNAVAILABLE,
                        "%s: cannot reach the Flink JobManager at %s (%s); is the "
                                + "cluster up, and is --jobmanager / engram.flink.jobmanager its REST address?"
                                        .formatted(what, address, firstLine(t.getMessage())),
                        cause);
            }
        }
        return new CliException(
                ExitCode.UNAVAILABLE, "%s on %s failed: %s".formatted(what, address, deepestMessage(cause)), cause);
    }

    /** The innermost cause's first message line: for Flink's wrapped failures that is the one that names the reason. */
    static String deepestMessage(Throwable t) {
        String message = String.valueOf(t);
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c.getMessage() != null && !c.getMessage().isBlank()) {
                message = c.getClass().getSimpleName() + ": " + c.getMessage();
            }
        }
        return firstLine(message);
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return (nl < 0 ? s : s.substring(0, nl)).strip();
    }

    @Override
    public void close() {
        client.close();
    }
}
