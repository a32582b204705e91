package io.engram.operators.session;

import io.engram.schemas.EventProvenance;
import io.engram.schemas.Summary;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;

/**
 * The keyed state of {@link SessionMemoryOperator} besides the memory store's ({@code FlinkMemoryStore}) and the
 * pending queries' ({@link PendingQueries}): names and types here are part of the savepoint format, so they never
 * change; new state gets new names.
 */
final class SessionStateDescriptors {
    private SessionStateDescriptors() {}

    static final MapStateDescriptor<Integer, EventProvenance> EVENTS =
            new MapStateDescriptor<>("engram-event-provenance", Types.INT, new AvroTypeInfo<>(EventProvenance.class));
    static final MapStateDescriptor<Long, io.engram.schemas.DroppedUnit> DROPPED_UNITS =
            io.engram.state.flink.PolicyStateDescriptors.DROPPED_UNITS;
    static final MapStateDescriptor<Integer, io.engram.schemas.MemoryUnit> POLICY_UNITS =
            io.engram.state.flink.PolicyStateDescriptors.POLICY_UNITS;
    static final org.apache.flink.api.common.state.ValueStateDescriptor<io.engram.schemas.PolicyState> POLICY_STATE =
            io.engram.state.flink.PolicyStateDescriptors.POLICY_STATE;
    /** The session's episode summaries by first memory token: what a session summary is built from. */
    static final MapStateDescriptor<Long, Summary> EPISODE_SUMMARIES =
            new MapStateDescriptor<>("engram-episode-summaries", Types.LONG, new AvroTypeInfo<>(Summary.class));
    /** Query ids the session has used (each query needs its own: answers are found by session and query id). */
    static final MapStateDescriptor<String, Boolean> QUERY_IDS =
            new MapStateDescriptor<>("engram-query-ids", Types.STRING, Types.BOOLEAN);
}
