package io.engram.topology;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.operators.DeadLetters;
import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.Summary;
import java.nio.file.Path;
import java.util.Map;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.PipelineOptions;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.formats.avro.typeutils.AvroTypeInfo;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.graph.StreamGraph;
import org.apache.flink.streaming.api.graph.StreamNode;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Builds the job graph (no cluster) and checks its settings, uids and types. */
class EngramJobTest {

    static final OutputTag<Summary> SUMMARIES = new OutputTag<>("s", new AvroTypeInfo<>(Summary.class));
    static final OutputTag<Attribution> ATTRIBUTIONS = new OutputTag<>("a", new AvroTypeInfo<>(Attribution.class));

    /** Emits nothing; test code only. */
    static final class Silent extends KeyedProcessFunction<String, EngramEvent, Answer> {
        @Override
        public void processElement(EngramEvent e, Context ctx, Collector<Answer> out) {}
    }

    static SessionStage silentStage(boolean withUid) {
        return events -> {
            SingleOutputStreamOperator<Answer> answers = events.process(new Silent(), new AvroTypeInfo<>(Answer.class))
                    .name("test silent");
            if (withUid) {
                answers.uid("engram-test-silent");
            }
            return new SessionOutputs(
                    answers,
                    answers.getSideOutput(SUMMARIES),
                    answers.getSideOutput(ATTRIBUTIONS),
                    answers.getSideOutput(DeadLetters.TAG));
        };
    }

    @Test
    void configurationUsesRocksDbIncrementalCheckpointsAndNoKryo(@TempDir Path dir) {
        var options =
                EngramOptions.of(Map.of("engram.data-dir", dir.toString(), "engram.job.checkpoint-interval", "1s"));
        Configuration conf = EngramJob.flinkConfiguration(options);
        assertThat(conf.get(StateBackendOptions.STATE_BACKEND)).isEqualTo("rocksdb");
        assertThat(conf.get(CheckpointingOptions.INCREMENTAL_CHECKPOINTS)).isTrue();
        assertThat(conf.get(CheckpointingOptions.CHECKPOINTING_INTERVAL)).hasSeconds(1);
        assertThat(conf.get(PipelineOptions.GENERIC_TYPES)).isFalse();
        assertThat(conf.get(CheckpointingOptions.CHECKPOINTS_DIRECTORY))
                .isEqualTo(dir.resolve("checkpoints").toAbsolutePath().toUri().toString());
        assertThat(EngramJob.checkpointDir(options.with(Map.of("engram.job.checkpoint-dir", "s3://b/c"))))
                .isEqualTo("s3://b/c");
        assertThat(conf.get(CheckpointingOptions.CHECKPOINTING_TIMEOUT)).hasMinutes(5);
        assertThat(conf.get(CheckpointingOptions.TOLERABLE_FAILURE_NUMBER)).isEqualTo(3);
        assertThat(conf.get(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS)).isEqualTo(3);
    }

    @Test
    void aTransactionTimeoutThatACheckpointCouldOutlastIsRefused(@TempDir Path dir) {
        var options = EngramOptions.of(Map.of(
                "engram.data-dir",
                dir.toString(),
                "engram.job.checkpoint-timeout",
                "10min",
                "engram.job.checkpoint-interval",
                "1s"));
        assertThatThrownBy(() -> EngramJob.flinkConfiguration(options))
                .isInstanceOf(io.engram.topology.options.ConfigException.class)
                .hasMessageContaining("engram.kafka.transaction-timeout (PT10M) must exceed");
        assertThatCode(() ->
                        EngramJob.flinkConfiguration(options.with(Map.of("engram.kafka.transaction-timeout", "11min"))))
                .doesNotThrowAnyException();
        assertThatThrownBy(() -> EngramOptions.of(Map.of("engram.job.retained-checkpoints", "1"))
                        .get(JobOptions.RETAINED_CHECKPOINTS))
                .hasMessageContaining(">= 2");
    }

    @Test
    void graphHasEveryUidAndNoGenericTypes(@TempDir Path dir) {
        var options = EngramOptions.of(Map.of("engram.data-dir", dir.toString()));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        EngramJob.build(env, EngramSources.kafka(options), EngramSinks.kafka(options), options, silentStage(true));

        assertThat(env.getConfig().getSerializerConfig().hasGenericTypesDisabled())
                .isTrue();
        assertThat(env.getCheckpointConfig().isCheckpointingEnabled()).isTrue();
        StreamGraph graph = env.getStreamGraph();
        assertThat(graph.getStreamNodes())
                .extracting(StreamNode::getTransformationUID)
                .contains(EngramJob.SOURCE_UID, EngramJob.DECODE_UID, "engram-test-silent")
                .anySatisfy(uid -> assertThat(uid).startsWith(EngramJob.ANSWERS_SINK_UID))
                .anySatisfy(uid -> assertThat(uid).startsWith(EngramJob.DEAD_LETTERS_SINK_UID));
    }

    /** The production stage's operator keeps the uid its savepoints (and engram state inspect) are read by. */
    @Test
    void sessionMemoryOperatorHasTheFixedUid(@TempDir Path dir) {
        var options = EngramOptions.of(Map.of("engram.data-dir", dir.toString()));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        var settings = io.engram.operators.session.SessionSettings.of(
                dir.toString(),
                16,
                32,
                1,
                new io.engram.operators.session.SessionSettings.Answers(8, 8, 0),
                new io.engram.operators.session.SessionSettings.Batching(4, 20),
                io.engram.operators.session.SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20));
        EngramJob.build(
                env,
                EngramSources.kafka(options),
                EngramSinks.kafka(options),
                options,
                new EngineSessionStage(settings));
        assertThat(env.getStreamGraph().getStreamNodes())
                .filteredOn(n -> n.getOperatorName().equals("session memory"))
                .singleElement()
                .extracting(StreamNode::getTransformationUID)
                .isEqualTo(EngramJob.SESSION_MEMORY_UID);
        assertThat(EngramJob.SESSION_MEMORY_UID)
                .as("changing it is a state migration")
                .isEqualTo("engram-session-memory");
    }

    @Test
    void aStageOperatorWithoutUidIsRefused(@TempDir Path dir) {
        var options = EngramOptions.of(Map.of("engram.data-dir", dir.toString()));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        assertThatThrownBy(() -> EngramJob.build(
                        env, EngramSources.kafka(options), EngramSinks.kafka(options), options, silentStage(false)))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("'test silent'");
        assertThatCode(() -> EngramJob.build(
                        StreamExecutionEnvironment.getExecutionEnvironment(),
                        EngramSources.kafka(options),
                        EngramSinks.kafka(options),
                        options,
                        silentStage(true)))
                .doesNotThrowAnyException();
    }
}
