package io.engram.topology;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Comparator;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Finds the checkpoint to resume from in a local checkpoint directory, where Flink keeps each job's completed
 * checkpoints as {@code JOB_ID/chk-N/_metadata} (retained on cancellation, see {@link EngramJob#flinkConfiguration}).
 * {@code engram run} restores the newest one so that a restart keeps every session's memory and resumes the Kafka
 * source at the offsets stored with it (exact: the offsets and the memory come from the same checkpoint).
 */
public final class RetainedCheckpoints {
    private RetainedCheckpoints() {}

    /**
     * The newest completed checkpoint (by its metadata's time, then its number) under {@code checkpointDir}, a
     * {@code file:} URI or a plain path; empty when there is none or the directory is not local.
     */
    public static Optional<Path> latest(String checkpointDir) {
        Path root;
        try {
            URI uri = URI.create(checkpointDir);
            if (uri.getScheme() != null && !uri.getScheme().equals("file")) {
                return Optional.empty();
            }
            root = uri.getScheme() == null ? Path.of(checkpointDir) : Path.of(uri);
        } catch (IllegalArgumentException e) {
            root = Path.of(checkpointDir);
        }
        if (!Files.isDirectory(root)) {
            return Optional.empty();
        }
        try (Stream<Path> jobs = Files.list(root)) {
            return jobs.filter(Files::isDirectory)
                    .flatMap(RetainedCheckpoints::completed)
                    .max(Comparator.comparing(RetainedCheckpoints::metadataTime)
                            .thenComparingLong(RetainedCheckpoints::number));
        } catch (IOException e) {
            throw new UncheckedIOException("listing checkpoints in " + root + ": " + e.getMessage(), e);
        }
    }

    private static Stream<Path> completed(Path jobDir) {
        try (Stream<Path> s = Files.list(jobDir)) {
            return s
                    .filter(p -> p.getFileName().toString().matches("chk-\\d+")
                            && Files.isRegularFile(p.resolve("_metadata")))
                    .toList()
                    .stream();
        } catch (IOException e) {
            return Stream.empty(); // a job directory being deleted: not a candidate
        }
    }

    private static FileTime metadataTime(Path chk) {
        try {
            return Files.getLastModifiedTime(chk.resolve("_metadata"));
        } catch (IOException e) {
            return FileTime.fromMillis(0);
        }
    }

    private static long number(Path chk) {
        return Long.parseLong(chk.getFileName().toString().substring(4));
    }
}
