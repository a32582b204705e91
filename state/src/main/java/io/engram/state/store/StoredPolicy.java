package io.engram.state.store;

import io.engram.schemas.DroppedUnit;
import io.engram.schemas.MemoryUnit;
import io.engram.schemas.PolicyState;
import java.util.Collections;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * What a session's memory policy and retention left in keyed state: the policy state (null when none), its units by
 * index (episodes or blocks with their ranges), and the records of dropped blocks by id.
 */
public record StoredPolicy(
        String session, PolicyState state, SortedMap<Integer, MemoryUnit> units, SortedMap<Long, DroppedUnit> dropped) {
    public StoredPolicy {
        units = Collections.unmodifiableSortedMap(new TreeMap<>(units));
        dropped = Collections.unmodifiableSortedMap(new TreeMap<>(dropped));
    }
}
