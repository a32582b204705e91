package io.engram.topology;

import io.engram.topology.options.Option;
import java.nio.file.Path;

/** Settings of the LLM engine inside the session memory operator. */
public final class EngineOptions {

    public static final Option<Path> MODEL_DIR = Option.pathKey("engram.model.dir")
            .noDefault()
            .description(
                    "Hugging Face model folder (config.json, model.safetensors, tokenizer.json) the engine loads on "
                            + "every task manager. When unset, Engram's own model in models/engram-tiny (relative to the working "
                            + "directory) is used if present; otherwise the session operator cannot start.");

    public static final Option<Integer> BLOCK_SIZE = Option.intKey("engram.engine.block-size")
            .defaultValue(128)
            .check(n -> n > 0 && n <= 65536, "in [1, 65536]")
            .description(
                    "Tokens per KV block: the unit of memory that is stored, scored, retrieved and evicted whole.");

    public static final Option<Integer> PREFILL_CHUNK = Option.intKey("engram.engine.prefill-chunk")
            .defaultValue(512)
            .check(n -> n > 0, "> 0")
            .description("Tokens per forward step while ingesting content (chunked prefill).");

    public static final Option<Integer> THREADS = Option.intKey("engram.engine.threads")
            .defaultValue(1)
            .check(n -> n > 0, "> 0")
            .description("CPU worker threads of the engine in each task slot.");

    public static final Option<io.engram.engine.backend.Backends.Device> DEVICE = Option.enumKey(
                    "engram.engine.device", io.engram.engine.backend.Backends.Device.class)
            .defaultValue(io.engram.engine.backend.Backends.Device.CPU)
            .description(
                    "Where the engine runs: CPU, CUDA (the GPU Flink's GPU external resource assigned the task manager, "
                            + "device 0 without one; fails with the reason when CUDA cannot be used) or AUTO (CUDA when a device, "
                            + "the driver and the kernels are present, else the CPU, logged once). One engine per task manager GPU: "
                            + "every task slot's operator shares the device's weights.");

    public static final Option<Integer> GPU_MEMORY_MB = Option.intKey("engram.engine.gpu-memory-mb")
            .defaultValue(0)
            .check(n -> n >= 0, ">= 0")
            .description(
                    "GPU memory in MiB the engine may use on its device (weights, KV blocks, activations), never "
                            + "exceeded: KV blocks beyond it are evicted to host memory least recently used first, and a model that "
                            + "does not fit fails with what holds the memory. 0 = 90% of the device memory free when it opens.");

    public static final Option<Integer> MAX_NEW_TOKENS = Option.intKey("engram.engine.max-new-tokens")
            .defaultValue(256)
            .check(n -> n > 0, "> 0")
            .description("Upper bound on the tokens generated for one answer, whatever a query asks for.");

    public static final Option<Integer> MAX_EVENT_TOKENS = Option.intKey("engram.engine.max-event-tokens")
            .defaultValue(io.engram.operators.session.SessionSettings.Limits.DEFAULT.maxEventTokens())
            .check(n -> n > 0, "> 0")
            .description("Tokens one content event (or one part of a long one, engram.decoder.part-chars) may have at "
                    + "most; a longer one is dead-lettered TOO_LARGE (its prefill would hold the task thread and checkpoint "
                    + "barriers for its whole length).");

    public static final Option<Integer> MAX_PENDING_QUERIES = Option.intKey("engram.engine.max-pending-queries")
            .defaultValue(io.engram.operators.session.SessionSettings.Limits.DEFAULT.maxPendingQueries())
            .check(n -> n > 0, "> 0")
            .description("Queries of one session waiting to be answered at most; a query beyond them is dead-lettered "
                    + "TOO_LARGE (ask again once the earlier ones are answered).");

    public static final Option<String> FAULT_POINTS = Option.stringKey("engram.faults.points")
            .defaultValue("")
            .check(
                    s -> s.isBlank()
                            || java.util.Arrays.stream(s.split(","))
                                    .allMatch(p -> java.util.Set.of("INGEST", "WRITE", "ANSWER")
                                            .contains(p.strip().toUpperCase(java.util.Locale.ROOT))),
                    "comma-separated INGEST, WRITE, ANSWER (empty: none)")
            .description("Fault injection for tests and the reliability soak, never for production: where the session "
                    + "operator raises failures on purpose (each is dead-lettered PROCESSING_FAILED). Empty: none.");

    public static final Option<Double> FAULT_RATE = Option.doubleKey("engram.faults.rate")
            .defaultValue(0.0)
            .check(r -> r >= 0 && r <= 1, "0..1")
            .description("Probability that a call at one of engram.faults.points fails.");

    public static final Option<Long> FAULT_SEED = Option.longKey("engram.faults.seed")
            .defaultValue(0L)
            .description("Seed of the injected failures' draws (with the point, session and event: a replayed event "
                    + "meets the same fate).");

    public static final Option<Integer> SUMMARY_TOKENS = Option.intKey("engram.engine.summary-tokens")
            .defaultValue(96)
            .check(n -> n > 0, "> 0")
            .description("Tokens generated for a requested session summary.");

    public static final Option<Integer> SUMMARY_INTERVAL = Option.intKey("engram.engine.summary-interval-tokens")
            .defaultValue(1024)
            .check(n -> n >= 0, ">= 0")
            .description(
                    "Emit an EPISODE summary to the summaries topic each time a session has ingested at least this "
                            + "many new tokens, ending where the memory policy's latest episode starts (EM-LLM) and generated from "
                            + "that span's text alone (one prefill of the span); 0 emits summaries only when a REQUEST_SUMMARY "
                            + "control event asks or retention drops text.");

    public static final Option<Integer> MAX_BATCH = Option.intKey("engram.engine.max-batch")
            .defaultValue(8)
            .check(n -> n > 0, "> 0")
            .description("Most sessions whose queries one task slot answers together in shared forward passes.");

    public static final Option<java.time.Duration> BATCH_WINDOW = Option.durationKey("engram.engine.batch-window")
            .defaultValue(java.time.Duration.ofMillis(20))
            .check(d -> !d.isNegative(), ">= 0")
            .description("How long a query may wait for queries of other sessions to batch with; 0 answers each query "
                    + "at once. A full batch (engram.engine.max-batch) is answered without waiting.");

    public static final Option<io.engram.state.codec.KvDType> KV_STORAGE = Option.enumKey(
                    "engram.state.kv-dtype", io.engram.state.codec.KvDType.class)
            .defaultValue(io.engram.state.codec.KvDType.BF16)
            .description("How stored KV memory keeps its values: BF16 (half the bytes of F32; measured on stories260K: "
                    + "max |dlogit| 0.06), INT8 with a scale per 32 values (~0.28 of F32; 0.16), INT4 with a scale per 32 values "
                    + "(~0.17 of F32; 2.9: lossy, for memory that is rarely retrieved), or F32 (exact).");

    public static final Option<Integer> WORKING_SET_MB = Option.intKey("engram.state.working-set-mb")
            .defaultValue(256)
            .check(n -> n >= 0, ">= 0")
            .description("Decoded KV blocks each task slot keeps in memory across its sessions (least recently used "
                    + "evicted first); the rest is read from keyed state when a session is processed.");

    public static final Option<io.engram.schemas.RetentionPolicy> RETENTION = Option.enumKey(
                    "engram.state.retention", io.engram.schemas.RetentionPolicy.class)
            .defaultValue(io.engram.schemas.RetentionPolicy.DROP_OLDEST)
            .description("What a session gives up when its stored memory passes engram.state.max-session-tokens or "
                    + "engram.state.max-session-mb: KEEP_ALL (no cap: a session's stored memory grows with its stream), "
                    + "DROP_OLDEST (oldest blocks first; the default, with a cap of 1,048,576 tokens) or "
                    + "DROP_LOWEST_SCORED (blocks of the least surprising text first). The first block and the most "
                    + "recent ones are never dropped; an episode summary covering the dropped text is emitted first, and "
                    + "each dropped block leaves a record of its source events.");

    public static final Option<Long> MAX_SESSION_TOKENS = Option.longKey("engram.state.max-session-tokens")
            .defaultValue(1L << 20)
            .check(n -> n >= 0, ">= 0")
            .description("Cap on the tokens of KV a session keeps stored (0: none); see engram.state.retention. The "
                    + "default, 1,048,576 tokens, is about 2 GiB of BF16 KV for engram-tiny and 128 GiB for an 8B "
                    + "Llama: size it to the disk the job's state may use.");

    public static final Option<Integer> MAX_SESSION_MB = Option.intKey("engram.state.max-session-mb")
            .defaultValue(0)
            .check(n -> n >= 0, ">= 0")
            .description(
                    "Cap on the stored bytes of a session's KV memory in MiB (0: none); see engram.state.retention.");

    public static final Option<java.time.Duration> IDLE_TTL = Option.durationKey("engram.state.idle-ttl")
            .defaultValue(java.time.Duration.ZERO)
            .check(d -> !d.isNegative(), ">= 0")
            .description(
                    "How long a session may go without an event (processing time) before its KV memory is dropped: "
                            + "an episode summary of the text not summarized yet is emitted first and each dropped block leaves "
                            + "a record of its source events; the session's provenance and summaries stay and a later event "
                            + "starts its memory afresh. 0: never.");

    private EngineOptions() {}
}
