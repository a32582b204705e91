package io.engram.operators.session;

import java.io.Serializable;

/**
 * What the session memory operator needs to start: the model and the engine's sizes. Validated here, shipped to the
 * task managers with the job graph.
 *
 * @param modelDir Hugging Face model folder, readable on every task manager
 * @param blockSize tokens per KV block
 * @param prefillChunk tokens per forward step while ingesting
 * @param threads engine worker threads per task slot
 * @param maxNewTokensCap upper bound on a query's {@code max_new_tokens}
 * @param summaryMaxTokens tokens generated for a summary
 * @param summaryIntervalTokens emit an episode summary each time this many new tokens were ingested (0 = only on request)
 * @param maxBatch sessions whose queries are answered in one batch at most
 * @param batchWindowMillis how long a query may wait for others to batch with (0 = answer at once)
 * @param kvStorage how stored KV blocks keep their values (F32 exact, BF16, INT8)
 * @param workingSetBytes decoded blocks kept in memory per task slot, across its sessions (LRU)
 * @param memory the memory policy the engine attends with, and its sizes
 * @param retention what a session gives up when its stored memory passes a cap
 * @param attribution which attribution tiers run, and their budgets
 * @param device where the engine runs (CPU, CUDA, AUTO) and its GPU memory budget
 * @param limits what one event and one session may ask of the operator at most
 */
public record SessionSettings(String modelDir, int blockSize, int prefillChunk, int threads, int maxNewTokensCap,
        int summaryMaxTokens, int summaryIntervalTokens, int maxBatch, long batchWindowMillis,
        io.engram.state.codec.KvDType kvStorage, long workingSetBytes, io.engram.engine.memory.MemorySettings memory,
        Retention retention, io.engram.operators.attribution.AttributionSettings attribution,
        io.engram.engine.backend.Backends.DeviceSettings device, Limits limits) implements Serializable {

    /**
     * Bounds that keep one session's input from stalling or swamping the operator; beyond them the event is
     * dead-lettered TOO_LARGE.
     *
     * @param maxEventTokens tokens one content event may have (its prefill holds the task thread, and checkpoint
     *     barriers, for its whole length)
     * @param maxPendingQueries queries of one session waiting to be answered
     */
    public record Limits(int maxEventTokens, int maxPendingQueries) implements Serializable {
        /** ~64 KB of English text per event; 64 queries waiting per session. */
        public static final Limits DEFAULT = new Limits(16384, 64);

        public Limits {
            if (maxEventTokens < 1 || maxPendingQueries < 1) {
                throw new IllegalArgumentException("tokens per event and pending queries per session must be >= 1, got "
                        + maxEventTokens + " and " + maxPendingQueries);
            }
        }
    }

    /** Settings with the default cap on tokens per event. */
    public SessionSettings(String modelDir, int blockSize, int prefillChunk, int threads, int maxNewTokensCap,
            int summaryMaxTokens, int summaryIntervalTokens, int maxBatch, long batchWindowMillis,
            io.engram.state.codec.KvDType kvStorage, long workingSetBytes, io.engram.engine.memory.MemorySettings memory,
            Retention retention, io.engram.operators.attribution.AttributionSettings attribution,
            io.engram.engine.backend.Backends.DeviceSettings device) {
        this(modelDir, blockSize, prefillChunk, threads, maxNewTokensCap, summaryMaxTokens, summaryIntervalTokens, maxBatch,
                batchWindowMillis, kvStorage, workingSetBytes, memory, retention, attribution, device, Limits.DEFAULT);
    }

    /**
     * A cap on a session's stored memory and what goes when it is passed.
     *
     * @param maxTokens stored tokens at most (0: no cap)
     * @param maxBytes stored bytes at most (0: no cap)
     */
    public record Retention(io.engram.schemas.RetentionPolicy policy, long maxTokens, long maxBytes) implements Serializable {
        public Retention {
            if (policy == null || maxTokens < 0 || maxBytes < 0) {
                throw new IllegalArgumentException("retention needs a policy and caps >= 0 (0 = none)");
            }
        }

        public static Retention keepAll() {
            return new Retention(io.engram.schemas.RetentionPolicy.KEEP_ALL, 0, 0);
        }
    }

    /** Settings with the engine on the CPU. */
    public SessionSettings(String modelDir, int blockSize, int prefillChunk, int threads, int maxNewTokensCap,
            int summaryMaxTokens, int summaryIntervalTokens, int maxBatch, long batchWindowMillis,
            io.engram.state.codec.KvDType kvStorage, long workingSetBytes, io.engram.engine.memory.MemorySettings memory,
            Retention retention, io.engram.operators.attribution.AttributionSettings attribution) {
        this(modelDir, blockSize, prefillChunk, threads, maxNewTokensCap, summaryMaxTokens, summaryIntervalTokens, maxBatch,
                batchWindowMillis, kvStorage, workingSetBytes, memory, retention, attribution,
                io.engram.engine.backend.Backends.DeviceSettings.cpu());
    }

    /** Settings with the default attribution tiers, on the CPU. */
    public SessionSettings(String modelDir, int blockSize, int prefillChunk, int threads, int maxNewTokensCap,
            int summaryMaxTokens, int summaryIntervalTokens, int maxBatch, long batchWindowMillis,
            io.engram.state.codec.KvDType kvStorage, long workingSetBytes, io.engram.engine.memory.MemorySettings memory,
            Retention retention) {
        this(modelDir, blockSize, prefillChunk, threads, maxNewTokensCap, summaryMaxTokens, summaryIntervalTokens, maxBatch,
                batchWindowMillis, kvStorage, workingSetBytes, memory, retention,
                io.engram.operators.attribution.AttributionSettings.defaults(), io.engram.engine.backend.Backends.DeviceSettings.cpu());
    }

    /** Settings with full attention as the memory policy. */
    public SessionSettings(String modelDir, int blockSize, int prefillChunk, int threads, int maxNewTokensCap,
            int summaryMaxTokens, int summaryIntervalTokens, int maxBatch, long batchWindowMillis,
            io.engram.state.codec.KvDType kvStorage, long workingSetBytes) {
        this(modelDir, blockSize, prefillChunk, threads, maxNewTokensCap, summaryMaxTokens, summaryIntervalTokens, maxBatch,
                batchWindowMillis, kvStorage, workingSetBytes, io.engram.engine.memory.MemorySettings.defaults(), Retention.keepAll());
    }

    public SessionSettings withMemory(io.engram.engine.memory.MemorySettings m) {
        return new SessionSettings(modelDir, blockSize, prefillChunk, threads, maxNewTokensCap, summaryMaxTokens,
                summaryIntervalTokens, maxBatch, batchWindowMillis, kvStorage, workingSetBytes, m, retention, attribution, device, limits);
    }

    public SessionSettings withRetention(Retention r) {
        return new SessionSettings(modelDir, blockSize, prefillChunk, threads, maxNewTokensCap, summaryMaxTokens,
                summaryIntervalTokens, maxBatch, batchWindowMillis, kvStorage, workingSetBytes, memory, r, attribution, device, limits);
    }

    public SessionSettings withAttribution(io.engram.operators.attribution.AttributionSettings a) {
        return new SessionSettings(modelDir, blockSize, prefillChunk, threads, maxNewTokensCap, summaryMaxTokens,
                summaryIntervalTokens, maxBatch, batchWindowMillis, kvStorage, workingSetBytes, memory, retention, a, device, limits);
    }

    public SessionSettings withDevice(io.engram.engine.backend.Backends.DeviceSettings d) {
        return new SessionSettings(modelDir, blockSize, prefillChunk, threads, maxNewTokensCap, summaryMaxTokens,
                summaryIntervalTokens, maxBatch, batchWindowMillis, kvStorage, workingSetBytes, memory, retention, attribution, d, limits);
    }

    /** The engine these settings describe (on CUDA device 0 until the operator knows its GPU). */
    public io.engram.engine.session.Engine.Spec engineSpec() {
        return new io.engram.engine.session.Engine.Spec(modelDir, device, 0, threads, blockSize, prefillChunk, memory,
                io.engram.engine.session.Engine.Spec.Format.PLAIN, attribution.segmentWords());
    }

    public SessionSettings withLimits(Limits l) {
        return new SessionSettings(modelDir, blockSize, prefillChunk, threads, maxNewTokensCap, summaryMaxTokens,
                summaryIntervalTokens, maxBatch, batchWindowMillis, kvStorage, workingSetBytes, memory, retention, attribution,
                device, l);
    }

    public SessionSettings {
        if (limits == null) {
            throw new IllegalArgumentException("limits are required (Limits.DEFAULT)");
        }
        if (modelDir == null || modelDir.isBlank()) {
            throw new IllegalArgumentException("a model folder is required (engram.model.dir)");
        }
        if (blockSize < 1 || prefillChunk < 1 || threads < 1 || maxNewTokensCap < 1 || summaryMaxTokens < 1) {
            throw new IllegalArgumentException("block size, prefill chunk, threads and token limits must be positive: " + this);
        }
        if (workingSetBytes < 0) {
            throw new IllegalArgumentException("working-set bytes must be >= 0, got " + workingSetBytes);
        }
        if (memory == null || retention == null || attribution == null || device == null) {
            throw new IllegalArgumentException("memory, retention, attribution and device settings are required");
        }
        if (kvStorage == null) {
            throw new IllegalArgumentException("a KV storage type is required (F32, BF16, INT8 or INT4)");
        }
        if (maxBatch < 1 || batchWindowMillis < 0) {
            throw new IllegalArgumentException("max batch must be >= 1 and the batch window >= 0 ms: " + this);
        }
        if (summaryIntervalTokens < 0) {
            throw new IllegalArgumentException("summary interval must be >= 0 (0 = off), got " + summaryIntervalTokens);
        }
    }
}
