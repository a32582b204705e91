package io.engram.state.flink;

import io.engram.schemas.SessionIndex;
import io.engram.state.store.MemoryStoreException;
import io.engram.state.store.StoredSession;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.api.java.tuple.Tuple4;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.state.api.OperatorIdentifier;
import org.apache.flink.state.api.SavepointReader;
import org.apache.flink.state.api.functions.KeyedStateReaderFunction;
import org.apache.flink.state.rocksdb.EmbeddedRocksDBStateBackend;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.CloseableIterator;
import org.apache.flink.util.Collector;

/**
 * Reads the memory that {@link FlinkMemoryStore} keeps in an operator's keyed state out of a savepoint or a retained
 * checkpoint (a directory with {@code _metadata}), with Flink's State Processor API on the RocksDB backend, in a local
 * batch job of parallelism 1. Only the two states of {@link FlinkMemoryStore} ({@link FlinkMemoryStore#INDEX},
 * {@link FlinkMemoryStore#UNITS}) are read; the operator's other states are left alone.
 *
 * <p>Holds every session's units in memory: for inspection and tests, not for restoring a job.
 */
public final class SavepointMemoryReader {

    private SavepointMemoryReader() {}

    /**
     * Every session with memory in the keyed state of operator {@code operatorUid}, sorted by session id.
     *
     * @param snapshotDir a savepoint or retained checkpoint directory (the one holding {@code _metadata})
     * @throws MemoryStoreException when the directory is not a snapshot, has no such operator, or cannot be read
     */
    public static List<StoredSession> read(Path snapshotDir, String operatorUid) {
        StreamExecutionEnvironment env = batchEnvironment(snapshotDir);
        List<StoredSession> out = new ArrayList<>();
        try {
            SavepointReader reader =
                    SavepointReader.read(env, snapshotDir.toUri().toString(), new EmbeddedRocksDBStateBackend());
            try (CloseableIterator<Tuple3<String, byte[], Map<Long, byte[]>>> it = reader.readKeyedState(
                            OperatorIdentifier.forUid(operatorUid), new Reader(), Types.STRING, Reader.TYPE)
                    .executeAndCollect("engram-read-memory " + snapshotDir.getFileName())) {
                while (it.hasNext()) {
                    Tuple3<String, byte[], Map<Long, byte[]>> row = it.next();
                    out.add(new StoredSession(
                            row.f0,
                            row.f1.length == 0
                                    ? null
                                    : SessionIndex.getDecoder().decode(row.f1),
                            new TreeMap<>(row.f2)));
                }
            }
        } catch (Exception e) {
            throw new MemoryStoreException(
                    "cannot read the memory of operator '" + operatorUid + "' from " + snapshotDir + ": "
                            + rootMessage(e),
                    e);
        }
        out.sort(java.util.Comparator.comparing(StoredSession::session));
        return out;
    }

    /**
     * The memory-policy state (units, boundaries, retained tokens) and retention records of every session that has any
     * in the keyed state of operator {@code operatorUid}, by session id.
     *
     * @throws MemoryStoreException when the directory is not a snapshot, has no such operator, or cannot be read
     */
    public static java.util.SortedMap<String, io.engram.state.store.StoredPolicy> readPolicies(
            Path snapshotDir, String operatorUid) {
        StreamExecutionEnvironment env = batchEnvironment(snapshotDir);
        java.util.SortedMap<String, io.engram.state.store.StoredPolicy> out = new TreeMap<>();
        try {
            SavepointReader reader =
                    SavepointReader.read(env, snapshotDir.toUri().toString(), new EmbeddedRocksDBStateBackend());
            try (CloseableIterator<Tuple4<String, byte[], Map<Integer, byte[]>, Map<Long, byte[]>>> it =
                    reader.readKeyedState(
                                    OperatorIdentifier.forUid(operatorUid),
                                    new PolicyReader(),
                                    Types.STRING,
                                    PolicyReader.TYPE)
                            .executeAndCollect("engram-read-policy-state " + snapshotDir.getFileName())) {
                while (it.hasNext()) {
                    Tuple4<String, byte[], Map<Integer, byte[]>, Map<Long, byte[]>> row = it.next();
                    Map<Integer, io.engram.schemas.MemoryUnit> units = new TreeMap<>();
                    for (var e : row.f2.entrySet()) {
                        units.put(
                                e.getKey(),
                                io.engram.schemas.MemoryUnit.getDecoder().decode(e.getValue()));
                    }
                    Map<Long, io.engram.schemas.DroppedUnit> dropped = new TreeMap<>();
                    for (var e : row.f3.entrySet()) {
                        dropped.put(
                                e.getKey(),
                                io.engram.schemas.DroppedUnit.getDecoder().decode(e.getValue()));
                    }
                    out.put(
                            row.f0,
                            new io.engram.state.store.StoredPolicy(
                                    row.f0,
                                    row.f1.length == 0
                                            ? null
                                            : io.engram.schemas.PolicyState.getDecoder()
                                                    .decode(row.f1),
                                    new TreeMap<>(units),
                                    new TreeMap<>(dropped)));
                }
            }
        } catch (Exception e) {
            throw new MemoryStoreException(
                    "cannot read the policy state of operator '" + operatorUid + "' from " + snapshotDir + ": "
                            + rootMessage(e),
                    e);
        }
        return out;
    }

    /** One row per session with policy state, units or dropped-block records; Avro records as single-object bytes. */
    static final class PolicyReader
            extends KeyedStateReaderFunction<String, Tuple4<String, byte[], Map<Integer, byte[]>, Map<Long, byte[]>>> {
        private static final long serialVersionUID = 1L;
        static final TypeInformation<Tuple4<String, byte[], Map<Integer, byte[]>, Map<Long, byte[]>>> TYPE =
                Types.TUPLE(
                        Types.STRING,
                        PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
                        Types.MAP(Types.INT, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO),
                        Types.MAP(Types.LONG, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));

        private transient ValueState<io.engram.schemas.PolicyState> state;
        private transient MapState<Integer, io.engram.schemas.MemoryUnit> units;
        private transient MapState<Long, io.engram.schemas.DroppedUnit> dropped;

        @Override
        public void open(OpenContext context) {
            state = getRuntimeContext().getState(PolicyStateDescriptors.POLICY_STATE);
            units = getRuntimeContext().getMapState(PolicyStateDescriptors.POLICY_UNITS);
            dropped = getRuntimeContext().getMapState(PolicyStateDescriptors.DROPPED_UNITS);
        }

        @Override
        public void readKey(
                String session,
                Context ctx,
                Collector<Tuple4<String, byte[], Map<Integer, byte[]>, Map<Long, byte[]>>> out)
                throws Exception {
            Map<Integer, byte[]> u = new HashMap<>();
            Iterable<Map.Entry<Integer, io.engram.schemas.MemoryUnit>> ue = units.entries();
            if (ue != null) {
                for (var e : ue) {
                    u.put(
                            e.getKey(),
                            bytes(io.engram.schemas.MemoryUnit.getEncoder().encode(e.getValue())));
                }
            }
            Map<Long, byte[]> d = new HashMap<>();
            Iterable<Map.Entry<Long, io.engram.schemas.DroppedUnit>> de = dropped.entries();
            if (de != null) {
                for (var e : de) {
                    d.put(
                            e.getKey(),
                            bytes(io.engram.schemas.DroppedUnit.getEncoder().encode(e.getValue())));
                }
            }
            io.engram.schemas.PolicyState ps = state.value();
            if (ps == null && u.isEmpty() && d.isEmpty()) {
                return;
            }
            out.collect(Tuple4.of(
                    session,
                    ps == null
                            ? new byte[0]
                            : bytes(io.engram.schemas.PolicyState.getEncoder().encode(ps)),
                    u,
                    d));
        }

        private static byte[] bytes(ByteBuffer b) {
            byte[] v = new byte[b.remaining()];
            b.get(v);
            return v;
        }
    }

    /** A local batch environment to read {@code snapshotDir} with, after checking it is a snapshot. */
    private static StreamExecutionEnvironment batchEnvironment(Path snapshotDir) {
        if (!Files.isRegularFile(snapshotDir.resolve("_metadata"))) {
            throw new MemoryStoreException(
                    snapshotDir + " is not a savepoint or checkpoint directory (no _metadata file)");
        }
        Configuration conf = new Configuration();
        conf.set(PipelineOptions.GENERIC_TYPES, false);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1, conf);
        env.setRuntimeMode(RuntimeExecutionMode.BATCH);
        return env;
    }

    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t == e ? String.valueOf(e.getMessage()) : e.getMessage() + " (cause: " + t + ")";
    }

    /**
     * One row per session that has an index or units: (session, single-object-encoded index or no bytes when it has
     * none, units by id). The index travels as bytes so the row type needs no nullable field.
     */
    static final class Reader extends KeyedStateReaderFunction<String, Tuple3<String, byte[], Map<Long, byte[]>>> {
        private static final long serialVersionUID = 1L;
        static final TypeInformation<Tuple3<String, byte[], Map<Long, byte[]>>> TYPE = Types.TUPLE(
                Types.STRING,
                PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
                Types.MAP(Types.LONG, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));

        private transient ValueState<SessionIndex> index;
        private transient MapState<Long, byte[]> units;

        @Override
        public void open(OpenContext context) {
            index = getRuntimeContext().getState(FlinkMemoryStore.INDEX);
            units = getRuntimeContext().getMapState(FlinkMemoryStore.UNITS);
        }

        @Override
        public void readKey(String session, Context ctx, Collector<Tuple3<String, byte[], Map<Long, byte[]>>> out)
                throws Exception {
            Map<Long, byte[]> blocks = new HashMap<>();
            Iterable<Map.Entry<Long, byte[]>> entries = units.entries();
            if (entries != null) {
                entries.forEach(e -> blocks.put(e.getKey(), e.getValue()));
            }
            SessionIndex idx = index.value();
            if (idx == null && blocks.isEmpty()) {
                return; // a key with only the operator's other state (provenance, parked queries)
            }
            out.collect(Tuple3.of(session, idx == null ? new byte[0] : encode(idx), blocks));
        }

        private static byte[] encode(SessionIndex idx) throws IOException {
            ByteBuffer b = SessionIndex.getEncoder().encode(idx);
            byte[] v = new byte[b.remaining()];
            b.get(v);
            return v;
        }
    }
}
