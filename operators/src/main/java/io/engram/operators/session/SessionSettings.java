package io.engram.operators.session;

import io.engram.engine.backend.Backends;
import io.engram.engine.memory.MemorySpec;
import io.engram.engine.session.Engine;
import io.engram.operators.attribution.AttributionSettings;
import io.engram.state.codec.KvDType;
import java.io.Serializable;

/**
 * What the session memory operator needs to start, in one record per concern. Validated here, shipped to the task
 * managers with the job graph.
 *
 * @param engine the engine: model folder, device, threads, block and prefill sizes, memory policy, prompt layout
 * @param answers what queries and summaries generate
 * @param batching how queries of several sessions are answered together
 * @param storage how sessions' memory is stored, cached and capped
 * @param attribution which attribution tiers run, and their budgets
 * @param limits what one event and one session may ask of the operator at most
 */
public record SessionSettings(
        Engine.Spec engine,
        Answers answers,
        Batching batching,
        Storage storage,
        AttributionSettings attribution,
        Limits limits)
        implements Serializable {

    /**
     * @param maxNewTokensCap upper bound on a query's {@code max_new_tokens}
     * @param summaryMaxTokens tokens generated for a summary
     * @param summaryIntervalTokens emit an episode summary each time this many new tokens were ingested (0 = only on
     *     request or before retention drops text)
     */
    public record Answers(int maxNewTokensCap, int summaryMaxTokens, int summaryIntervalTokens)
            implements Serializable {
        public Answers {
            if (maxNewTokensCap < 1 || summaryMaxTokens < 1 || summaryIntervalTokens < 0) {
                throw new IllegalArgumentException(
                        "token limits must be positive and the summary interval >= 0 (0 = off): " + this);
            }
        }
    }

    /**
     * @param maxBatch sessions whose queries are answered in one batch at most
     * @param batchWindowMillis how long a query may wait for others to batch with (0 = answer at once)
     */
    public record Batching(int maxBatch, long batchWindowMillis) implements Serializable {
        public Batching {
            if (maxBatch < 1 || batchWindowMillis < 0) {
                throw new IllegalArgumentException("max batch must be >= 1 and the batch window >= 0 ms: " + this);
            }
        }
    }

    /**
     * @param kvDType how stored KV blocks keep their values (F32 exact, BF16, INT8, INT4)
     * @param workingSetBytes decoded blocks kept in memory per task slot, across its sessions (LRU)
     * @param retention what a session gives up when its stored memory passes a cap
     */
    public record Storage(KvDType kvDType, long workingSetBytes, Retention retention) implements Serializable {
        public Storage {
            if (kvDType == null || retention == null) {
                throw new IllegalArgumentException(
                        "a KV storage type (F32, BF16, INT8 or INT4) and a retention are required");
            }
            if (workingSetBytes < 0) {
                throw new IllegalArgumentException("working-set bytes must be >= 0, got " + workingSetBytes);
            }
        }

        /** Stored as {@code kvDType}, nothing ever dropped. */
        public static Storage of(KvDType kvDType, long workingSetBytes) {
            return new Storage(kvDType, workingSetBytes, Retention.keepAll());
        }
    }

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

    /**
     * A cap on a session's stored memory and what goes when it is passed, and how long a session may stay idle before
     * its memory goes.
     *
     * @param maxTokens stored tokens at most (0: no cap)
     * @param maxBytes stored bytes at most (0: no cap)
     * @param idleMillis processing time without an event after which a session's KV memory is dropped (an episode
     *     summary of what was not summarized yet first, a DroppedUnit per block); 0: never
     */
    public record Retention(io.engram.schemas.RetentionPolicy policy, long maxTokens, long maxBytes, long idleMillis)
            implements Serializable {
        public Retention {
            if (policy == null || maxTokens < 0 || maxBytes < 0 || idleMillis < 0) {
                throw new IllegalArgumentException("retention needs a policy and caps >= 0 (0 = none)");
            }
        }

        public Retention(io.engram.schemas.RetentionPolicy policy, long maxTokens, long maxBytes) {
            this(policy, maxTokens, maxBytes, 0);
        }

        public static Retention keepAll() {
            return new Retention(io.engram.schemas.RetentionPolicy.KEEP_ALL, 0, 0, 0);
        }

        /** The same with sessions idle for {@code millis} dropped (0: never). */
        public Retention withIdle(long millis) {
            return new Retention(policy, maxTokens, maxBytes, millis);
        }
    }

    public SessionSettings {
        if (engine == null
                || answers == null
                || batching == null
                || storage == null
                || attribution == null
                || limits == null) {
            throw new IllegalArgumentException(
                    "engine, answers, batching, storage, attribution and limits settings are required");
        }
        if (engine.segmentWords() != attribution.segmentWords()) {
            throw new IllegalArgumentException("the engine segments by %d words but attribution by %d"
                    .formatted(engine.segmentWords(), attribution.segmentWords()));
        }
    }

    /**
     * Settings for the model in {@code modelDir} on the CPU, with the default memory policy, the default attribution tiers and
     * limits, and the given sizes.
     */
    public static SessionSettings of(
            String modelDir,
            int blockSize,
            int prefillChunk,
            int threads,
            Answers answers,
            Batching batching,
            Storage storage) {
        AttributionSettings attribution = AttributionSettings.defaults();
        return new SessionSettings(
                new Engine.Spec(
                        modelDir,
                        Backends.DeviceSettings.cpu(),
                        0,
                        threads,
                        blockSize,
                        prefillChunk,
                        MemorySpec.defaults(),
                        Engine.Spec.Format.PLAIN,
                        attribution.segmentWords()),
                answers,
                batching,
                storage,
                attribution,
                Limits.DEFAULT);
    }

    public SessionSettings withEngine(Engine.Spec e) {
        return new SessionSettings(e, answers, batching, storage, attribution, limits);
    }

    public SessionSettings withMemory(MemorySpec m) {
        return withEngine(new Engine.Spec(
                engine.modelDir(),
                engine.device(),
                engine.gpuOrdinal(),
                engine.threads(),
                engine.blockSize(),
                engine.prefillChunk(),
                m,
                engine.format(),
                engine.segmentWords()));
    }

    public SessionSettings withDevice(Backends.DeviceSettings d) {
        return withEngine(new Engine.Spec(
                engine.modelDir(),
                d,
                engine.gpuOrdinal(),
                engine.threads(),
                engine.blockSize(),
                engine.prefillChunk(),
                engine.memory(),
                engine.format(),
                engine.segmentWords()));
    }

    public SessionSettings withStorage(Storage s) {
        return new SessionSettings(engine, answers, batching, s, attribution, limits);
    }

    public SessionSettings withRetention(Retention r) {
        return withStorage(new Storage(storage.kvDType(), storage.workingSetBytes(), r));
    }

    /** The attribution settings; the engine's segments follow their size. */
    public SessionSettings withAttribution(AttributionSettings a) {
        Engine.Spec e = new Engine.Spec(
                engine.modelDir(),
                engine.device(),
                engine.gpuOrdinal(),
                engine.threads(),
                engine.blockSize(),
                engine.prefillChunk(),
                engine.memory(),
                engine.format(),
                a.segmentWords());
        return new SessionSettings(e, answers, batching, storage, a, limits);
    }

    public SessionSettings withLimits(Limits l) {
        return new SessionSettings(engine, answers, batching, storage, attribution, l);
    }
}
