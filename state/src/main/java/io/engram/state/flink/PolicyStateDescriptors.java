package io.engram.state.flink;

import io.engram.schemas.DroppedUnit;
import io.engram.schemas.MemoryUnit;
import io.engram.schemas.PolicyState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;

/**
 * The keyed state the session operator keeps beside the KV blocks: the memory policy's units and state, and what
 * retention dropped. Declared here so the operator and the tools that read savepoints use the same names and types.
 */
public final class PolicyStateDescriptors {
    /** Units the session's retrieval policy formed, by index in sequence order (representative keys). */
    public static final MapStateDescriptor<Integer, MemoryUnit> POLICY_UNITS =
            new MapStateDescriptor<>("engram-policy-units", Types.INT, new AvroTypeInfo<>(MemoryUnit.class));
    /** The rest of the session's policy state (boundaries, retained tokens). */
    public static final ValueStateDescriptor<PolicyState> POLICY_STATE =
            new ValueStateDescriptor<>("engram-policy-state", new AvroTypeInfo<>(PolicyState.class));
    /** What remains of blocks the session's retention dropped, by block id. */
    public static final MapStateDescriptor<Long, DroppedUnit> DROPPED_UNITS =
            new MapStateDescriptor<>("engram-dropped-units", Types.LONG, new AvroTypeInfo<>(DroppedUnit.class));

    private PolicyStateDescriptors() {}
}
