package io.engram.it;

import io.engram.schemas.Answer;
import io.engram.schemas.AnswerTimings;
import io.engram.schemas.Citation;
import io.engram.schemas.MemoryStats;
import io.engram.schemas.SourceCoordinates;
import io.engram.schemas.SourceSegment;
import io.engram.schemas.Summary;
import io.engram.schemas.SummaryKind;
import java.nio.ByteBuffer;
import java.util.List;
import org.apache.avro.specific.SpecificRecord;

/** Hand-built outputs, as the job would write them, for tests of what reads them. */
final class Outputs {

    private Outputs() {}

    static Answer answer(String session, String queryId, String text) {
        SourceSegment segment = SourceSegment.newBuilder()
                .setSource(new SourceCoordinates("in", 1, 17L))
                .setEventId("e-17")
                .setCharStart(4)
                .setCharEnd(27)
                .setExcerpt("The vault code is 7481.")
                .setScore(0.91)
                .setRank(1)
                .build();
        return Answer.newBuilder()
                .setSessionId(session)
                .setQueryId(queryId)
                .setQuerySource(new SourceCoordinates("in", 1, 20L))
                .setText(text)
                .setPromptTokens(120)
                .setMemoryTokens(4096)
                .setGeneratedTokens(9)
                .setTimings(new AnswerTimings(1L, 2L, 30L, 40L, 73L))
                .setModel("test-model")
                .setMemory(new MemoryStats(4096L, 32, 1_048_576L, "0a1b2c3d"))
                .setCitations(List.of(new Citation("[1]", segment)))
                .setCreatedAtMs(1000L)
                .build();
    }

    static Summary summary(String session, long lastOffset, String text) {
        return Summary.newBuilder()
                .setSessionId(session)
                .setKind(SummaryKind.EPISODE)
                .setFirstEvent(new SourceCoordinates("in", 0, 0L))
                .setLastEvent(new SourceCoordinates("in", 0, lastOffset))
                .setFirstToken(0L)
                .setLastToken(lastOffset * 100)
                .setText(text)
                .setModel("test-model")
                .setCreatedAtMs(1000L)
                .build();
    }

    static byte[] bytes(SpecificRecord record) throws Exception {
        ByteBuffer b = switch (record) {
            case Answer a -> Answer.getEncoder().encode(a);
            case Summary s -> Summary.getEncoder().encode(s);
            case io.engram.schemas.Attribution a ->
                io.engram.schemas.Attribution.getEncoder().encode(a);
            case io.engram.schemas.EngramEvent e ->
                io.engram.schemas.EngramEvent.getEncoder().encode(e);
            default -> throw new IllegalArgumentException(record.getClass().getName());
        };
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }
}
