package io.engram.state.bench;

import io.engram.state.flink.FlinkMemoryStore;
import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.core.execution.SavepointFormatType;
import org.apache.flink.state.rocksdb.RocksDBOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.util.CloseableIterator;

/**
 * Bytes a native (RocksDB) savepoint of a keyed operator takes for given memory: a local job on the RocksDB backend
 * writes the sessions' units through {@link FlinkMemoryStore}, a savepoint in the native format (the SST files Flink's
 * incremental checkpoints upload) is taken while the job runs, and the files under it are summed. A rate-limited tick
 * source keeps the job running until then; the job is cancelled afterwards.
 */
public final class SavepointGrowth {

    /** One session's units: ids and encoded bytes, in the same order. */
    public record SessionUnits(String session, long[] ids, byte[][] units) implements Serializable {}

    private SavepointGrowth() {}

    /** Total bytes of a native savepoint of an operator holding {@code sessions} (empty: the fixed overhead). */
    public static long savepointBytes(Path work, List<SessionUnits> sessions) throws Exception {
        Files.createDirectories(work);
        Configuration conf = new Configuration();
        conf.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
        conf.set(
                RocksDBOptions.LOCAL_DIRECTORIES,
                work.resolve("rocksdb").toAbsolutePath().toString());
        conf.set(PipelineOptions.GENERIC_TYPES, false);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1, conf);
        DataGeneratorSource<Long> ticks =
                new DataGeneratorSource<>(i -> i, Long.MAX_VALUE, RateLimiterStrategy.perSecond(20), Types.LONG);
        CloseableIterator<Integer> written = env.fromSource(ticks, WatermarkStrategy.noWatermarks(), "ticks")
                .uid("engram-ticks")
                .keyBy(i -> "writer", Types.STRING)
                .transform("engram memory writer", Types.INT, new Writer(List.copyOf(sessions)))
                .uid("engram-memory-writer")
                .collectAsync();
        JobClient job = env.executeAsync("engram-bench-savepoint-growth");
        try (written) {
            if (!written.hasNext()) {
                throw new IllegalStateException("the savepoint-growth job ended before writing its units");
            }
            int units = written.next();
            int expected = sessions.stream().mapToInt(s -> s.ids().length).sum();
            if (units != expected) {
                throw new IllegalStateException("the writer stored " + units + " units, expected " + expected);
            }
            String location = job.triggerSavepoint(
                            work.resolve("savepoints").toUri().toString(), SavepointFormatType.NATIVE)
                    .get(120, TimeUnit.SECONDS);
            return directoryBytes(
                    Path.of(java.net.URI.create(location.startsWith("file:") ? location : "file:" + location)));
        } finally {
            job.cancel().get(60, TimeUnit.SECONDS);
        }
    }

    private static long directoryBytes(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile)
                    .mapToLong(p -> {
                        try {
                            return Files.size(p);
                        } catch (IOException e) {
                            throw new UncheckedIOException(e);
                        }
                    })
                    .sum();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot measure savepoint " + dir, e);
        }
    }

    /** On the first tick, stores every session's units under its own key and emits how many; later ticks do nothing. */
    static final class Writer extends AbstractStreamOperator<Integer> implements OneInputStreamOperator<Long, Integer> {
        private static final long serialVersionUID = 1L;
        private final List<SessionUnits> sessions;
        private transient FlinkMemoryStore store;

        Writer(List<SessionUnits> sessions) {
            this.sessions = sessions;
        }

        @Override
        public void open() throws Exception {
            super.open();
            store = new FlinkMemoryStore(getKeyedStateStore(), this::getCurrentKey);
        }

        @Override
        public void processElement(StreamRecord<Long> tick) {
            if (tick.getValue() != 0) {
                return; // ticks after the first only keep the job running until the savepoint is taken
            }
            int n = 0;
            for (SessionUnits s : sessions) {
                setCurrentKey(s.session());
                for (int i = 0; i < s.ids().length; i++) {
                    store.putUnit(s.session(), s.ids()[i], s.units()[i]);
                    n++;
                }
            }
            output.collect(new StreamRecord<>(n));
        }
    }
}
