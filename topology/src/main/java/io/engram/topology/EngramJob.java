package io.engram.topology;

import io.engram.operators.DeadLetters;
import io.engram.operators.DecoderSettings;
import io.engram.operators.EventDecoder;
import io.engram.operators.RawRecord;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.topology.options.ResolvedOptions;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.dag.Transformation;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.KeyedStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.transformations.PhysicalTransformation;

/**
 * The one place the Flink job is wired. {@code main}, the CLI's embedded {@code run} and every IT call {@link #build}.
 *
 * <pre>
 * source (engram-source) -> decode (engram-decode) -+-> keyBy(session id) -> session stage -> answers      -> engram-sink-answers
 *                                                   |                                      -> summaries    -> engram-sink-summaries
 *                                                   |                                      -> attributions -> engram-sink-attributions
 *                                                   +-> dead letters (+ the stage's) ---------------------> engram-sink-dead-letters
 * </pre>
 *
 * Operator uids are part of the savepoint format: changing one is a state-migration decision.
 */
public final class EngramJob {

    public static final String SOURCE_UID = "engram-source";
    public static final String DECODE_UID = "engram-decode";
    /** The session memory operator: its keyed state holds every session's memory (read by {@code engram state inspect}). */
    public static final String SESSION_MEMORY_UID = "engram-session-memory";

    public static final String ANSWERS_SINK_UID = "engram-sink-answers";
    public static final String SUMMARIES_SINK_UID = "engram-sink-summaries";
    public static final String ATTRIBUTIONS_SINK_UID = "engram-sink-attributions";
    public static final String DEAD_LETTERS_SINK_UID = "engram-sink-dead-letters";

    private EngramJob() {}

    /**
     * Flink settings the job needs, with Flink's own keys: RocksDB state backend ({@code EmbeddedRocksDBStateBackend})
     * with incremental checkpoints, exactly-once checkpointing every {@link JobOptions#CHECKPOINT_INTERVAL}, retained
     * on cancellation, to {@link JobOptions#CHECKPOINT_DIR}, with an explicit timeout, tolerable failures and retained
     * count (the sinks' transaction timeout must exceed interval plus timeout), unaligned once alignment takes longer
     * than {@link JobOptions#ALIGNED_CHECKPOINT_TIMEOUT}, and {@code pipeline.generic-types=false} so a Kryo fallback
     * fails at build time. Pass it to the environment ({@code createLocalEnvironment(p, conf)}) or let {@link #build}
     * apply it.
     */
    public static Configuration flinkConfiguration(ResolvedOptions options) {
        Configuration conf = new Configuration();
        conf.set(StateBackendOptions.STATE_BACKEND, "rocksdb");
        conf.set(CheckpointingOptions.INCREMENTAL_CHECKPOINTS, true);
        conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, options.get(JobOptions.CHECKPOINT_INTERVAL));
        conf.set(CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE, CheckpointingMode.EXACTLY_ONCE);
        conf.set(
                CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION,
                ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
        conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, checkpointDir(options));
        conf.set(CheckpointingOptions.CHECKPOINTING_TIMEOUT, options.get(JobOptions.CHECKPOINT_TIMEOUT));
        conf.set(CheckpointingOptions.TOLERABLE_FAILURE_NUMBER, options.get(JobOptions.TOLERABLE_CHECKPOINT_FAILURES));
        conf.set(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS, options.get(JobOptions.RETAINED_CHECKPOINTS));
        conf.set(CheckpointingOptions.ENABLE_UNALIGNED, true); // only once alignment takes longer than:
        conf.set(CheckpointingOptions.ALIGNED_CHECKPOINT_TIMEOUT, options.get(JobOptions.ALIGNED_CHECKPOINT_TIMEOUT));
        conf.set(PipelineOptions.GENERIC_TYPES, false);
        java.time.Duration window =
                options.get(JobOptions.CHECKPOINT_INTERVAL).plus(options.get(JobOptions.CHECKPOINT_TIMEOUT));
        if (options.get(KafkaOptions.TRANSACTION_TIMEOUT).compareTo(window) <= 0) {
            throw new io.engram.topology.options.ConfigException(("engram.kafka.transaction-timeout (%s) must exceed "
                            + "engram.job.checkpoint-interval + engram.job.checkpoint-timeout (%s): a sink transaction stays open "
                            + "until the checkpoint after it completes; raise the transaction timeout (<= the brokers' "
                            + "transaction.max.timeout.ms) or shorten the checkpoint timeout")
                    .formatted(options.get(KafkaOptions.TRANSACTION_TIMEOUT), window));
        }
        return conf;
    }

    /** {@link JobOptions#CHECKPOINT_DIR}, or {@code checkpoints/} under {@link JobOptions#DATA_DIR} as a file URI. */
    public static String checkpointDir(ResolvedOptions options) {
        return options.find(JobOptions.CHECKPOINT_DIR).orElseGet(() -> {
            Path dir = options.get(JobOptions.DATA_DIR)
                    .resolve("checkpoints")
                    .toAbsolutePath()
                    .normalize();
            return dir.toUri().toString();
        });
    }

    /**
     * Wires the job into {@code env}: applies {@link #flinkConfiguration}, reads {@code sources.events()}, decodes
     * (bad records to the dead-letter sink), keys by session id, lets {@code sessionStage} add the per-session operators,
     * and connects its outputs to {@code sinks}.
     *
     * @throws IllegalStateException if an operator of the graph has no uid (the stage's included), naming them
     */
    public static void build(
            StreamExecutionEnvironment env,
            EngramSources sources,
            EngramSinks sinks,
            ResolvedOptions options,
            SessionStage sessionStage) {
        env.configure(flinkConfiguration(options));
        env.setParallelism(options.get(JobOptions.PARALLELISM));

        DataStream<RawRecord> raw = env.fromSource(
                        sources.events(), WatermarkStrategy.noWatermarks(), "engram source", RawRecord.TYPE)
                .uid(SOURCE_UID);

        SingleOutputStreamOperator<EngramEvent> events = raw.process(
                        new EventDecoder(new DecoderSettings(
                                options.get(JobOptions.MAX_EVENT_BYTES), options.get(JobOptions.PART_CHARS))),
                        EventDecoder.EVENT_TYPE)
                .name("engram decode")
                .uid(DECODE_UID);
        DataStream<DeadLetter> decodeDeadLetters = events.getSideOutput(DeadLetters.TAG);

        KeyedStream<EngramEvent, String> bySession = events.keyBy(new SessionKey(), Types.STRING);
        SessionOutputs out = sessionStage.apply(bySession);

        out.answers().sinkTo(sinks.answers()).name("engram answers sink").uid(ANSWERS_SINK_UID);
        out.summaries().sinkTo(sinks.summaries()).name("engram summaries sink").uid(SUMMARIES_SINK_UID);
        out.attributions()
                .sinkTo(sinks.attributions())
                .name("engram attributions sink")
                .uid(ATTRIBUTIONS_SINK_UID);
        decodeDeadLetters
                .union(out.deadLetters())
                .sinkTo(sinks.deadLetters())
                .name("engram dead-letter sink")
                .uid(DEAD_LETTERS_SINK_UID);

        requireUids(env.getTransformations());
    }

    /** Fails when an operator (a physical transformation) reachable from {@code sinks} has no uid. */
    static void requireUids(List<Transformation<?>> sinks) {
        Set<String> missing = new TreeSet<>();
        Set<Integer> seen = new HashSet<>();
        Deque<Transformation<?>> todo = new ArrayDeque<>(sinks);
        while (!todo.isEmpty()) {
            Transformation<?> t = todo.pop();
            if (!seen.add(t.getId())) {
                continue;
            }
            if (t instanceof PhysicalTransformation<?>
                    && (t.getUid() == null || t.getUid().isBlank())) {
                missing.add("'" + t.getName() + "' (" + t.getClass().getSimpleName() + ")");
            }
            todo.addAll(t.getInputs());
        }
        if (!missing.isEmpty()) {
            throw new IllegalStateException("operators without a uid: " + missing
                    + "; give each .uid(\"engram-<name>\") so savepoints can restore them");
        }
    }
}
