package io.engram.topology;

import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.Summary;
import java.util.Objects;
import org.apache.flink.streaming.api.datastream.DataStream;

/**
 * What a {@link SessionStage} emits. All four streams are required; a stage that has nothing of a kind (yet) still
 * returns a stream for it (e.g. a side output it never writes to), so the job's sinks and uids stay the same.
 */
public record SessionOutputs(
        DataStream<Answer> answers,
        DataStream<Summary> summaries,
        DataStream<Attribution> attributions,
        DataStream<DeadLetter> deadLetters) {

    public SessionOutputs {
        Objects.requireNonNull(answers, "answers stream (return an empty side output if the stage emits none)");
        Objects.requireNonNull(summaries, "summaries stream (return an empty side output if the stage emits none)");
        Objects.requireNonNull(
                attributions, "attributions stream (return an empty side output if the stage emits none)");
        Objects.requireNonNull(deadLetters, "deadLetters stream (return an empty side output if the stage emits none)");
    }
}
