package io.engram.state.bench;

import io.engram.state.codec.KvDType;
import io.engram.state.flink.FlinkMemoryStore;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.api.java.tuple.Tuple4;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.state.rocksdb.RocksDBOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.util.CloseableIterator;

/**
 * The Flink keyed-state peer of {@link StoreBench#direct}: the same units written and read through
 * {@link FlinkMemoryStore} inside a keyed operator of a local job on the RocksDB state backend (the job's own path),
 * one key per (dtype, run). Timed inside the operator, so job start-up is not counted.
 */
public final class KeyedStoreBench {

    private KeyedStoreBench() {}

    /**
     * What the bench operator needs: the unit shape, units per run and the seed (units equal {@link StoreBench#units}).
     */
    public record Settings(StoreBench.Shape shape, int units, long seed) implements Serializable {}

    /** Runs {@code runs} write+read runs per dtype and returns one row per dtype. RocksDB files go under {@code dir}. */
    public static List<StoreBench.Row> run(Path dir, List<KvDType> types, Settings settings, int runs)
            throws Exception {
        Configuration conf = new Configuration();
        conf.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
        conf.set(RocksDBOptions.LOCAL_DIRECTORIES, dir.toAbsolutePath().toString());
        conf.set(PipelineOptions.GENERIC_TYPES, false);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1, conf);
        List<Tuple2<String, Integer>> work = new ArrayList<>();
        for (KvDType t : types) {
            for (int r = 0; r < runs; r++) {
                work.add(Tuple2.of(t.name(), r));
            }
        }
        TypeInformation<Tuple4<String, Integer, Long, Long>> outType =
                Types.TUPLE(Types.STRING, Types.INT, Types.LONG, Types.LONG);
        Map<KvDType, List<StoreBench.Run>> byType = new EnumMap<>(KvDType.class);
        try (CloseableIterator<Tuple4<String, Integer, Long, Long>> it = env.fromData(
                        work, Types.TUPLE(Types.STRING, Types.INT))
                .keyBy(w -> w.f0 + "-" + w.f1, Types.STRING)
                .transform("engram store bench", outType, new BenchOperator(settings))
                .uid("engram-store-bench")
                .executeAndCollect("engram-bench-store")) {
            while (it.hasNext()) {
                Tuple4<String, Integer, Long, Long> r = it.next();
                byType.computeIfAbsent(KvDType.valueOf(r.f0), k -> new ArrayList<>())
                        .add(new StoreBench.Run(r.f2, r.f3));
            }
        }
        List<StoreBench.Row> rows = new ArrayList<>();
        for (KvDType t : types) {
            if (byType.getOrDefault(t, List.of()).size() != runs) {
                throw new IllegalStateException("the keyed-state bench returned "
                        + byType.getOrDefault(t, List.of()).size() + " of " + runs + " runs for " + t);
            }
            long unitBytes =
                    StoreBench.units(settings.shape(), t, 1, settings.seed()).get(0).length;
            rows.add(StoreBench.row("flink-keyed", t, unitBytes, settings.units(), byType.get(t)));
        }
        return rows;
    }

    /** Writes then reads the units of the element's dtype under the element's key; emits (dtype, run, write ns, read ns). */
    static final class BenchOperator extends AbstractStreamOperator<Tuple4<String, Integer, Long, Long>>
            implements OneInputStreamOperator<Tuple2<String, Integer>, Tuple4<String, Integer, Long, Long>> {
        private static final long serialVersionUID = 1L;
        private final Settings settings;
        private transient FlinkMemoryStore store;
        private transient Map<KvDType, List<byte[]>> units;

        BenchOperator(Settings settings) {
            this.settings = settings;
        }

        @Override
        public void open() throws Exception {
            super.open();
            store = new FlinkMemoryStore(getKeyedStateStore(), this::getCurrentKey);
            units = new EnumMap<>(KvDType.class);
        }

        @Override
        public void processElement(StreamRecord<Tuple2<String, Integer>> element) {
            KvDType type = KvDType.valueOf(element.getValue().f0);
            List<byte[]> us = units.computeIfAbsent(
                    type, t -> StoreBench.units(settings.shape(), t, settings.units(), settings.seed()));
            String session = (String) getCurrentKey();
            long t0 = System.nanoTime();
            for (int i = 0; i < us.size(); i++) {
                store.putUnit(session, i, us.get(i));
            }
            long t1 = System.nanoTime();
            for (int i = 0; i < us.size(); i++) {
                StoreBench.check(us.get(i), store.getUnit(session, i), session, i);
            }
            long t2 = System.nanoTime();
            output.collect(new StreamRecord<>(Tuple4.of(type.name(), element.getValue().f1, t1 - t0, t2 - t1)));
        }
    }
}
