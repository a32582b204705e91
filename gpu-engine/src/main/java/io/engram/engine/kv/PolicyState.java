package io.engram.engine.kv;

/**
 * What a memory policy keeps per session beside the session's KV blocks (units and representative keys, token
 * scores, retained sets), held by the session's {@link KvCache} under the policy that made it ({@link
 * KvCache#policyState}) and carried to a cache rebuilt for the same session ({@link KvCache#adoptPolicyStates}).
 * It may refer to the cache's blocks; its policy repairs those references when blocks are replaced or dropped.
 */
public interface PolicyState {}
