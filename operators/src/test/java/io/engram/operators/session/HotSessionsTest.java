package io.engram.operators.session;

import static io.engram.operators.session.SessionMemoryOperatorTest.ev;
import static io.engram.operators.session.SessionMemoryOperatorTest.harness;
import static io.engram.operators.session.SessionMemoryOperatorTest.query;
import static io.engram.operators.session.SessionMemoryOperatorTest.text;
import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.Answer;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A session whose memory stays hot between events (HotSessions) answers exactly as one whose memory is read back from
 * state before every event: same text, citations, retrieved spans, memory fingerprint and length, with every memory
 * policy (the stream outgrows the bounded policies' windows, so their units, events and retained sets are restored).
 */
class HotSessionsTest {
    @TempDir
    static java.nio.file.Path tmp;

    @BeforeAll
    static void model() {
        io.engram.schemas.EngramSchemas.trustEngramClasses();
        SessionMemoryOperatorTest.model = io.engram.engine.model.synthetic.TinyModels.write(
                tmp.resolve("m"),
                io.engram.engine.model.synthetic.TinyModels.Variant.QWEN2,
                io.engram.engine.tensor.DType.F32,
                42);
    }

    static final List<String> TURNS = List.of(
            "The vault code is 7481.",
            "My sister lives in Porto.",
            "q",
            "The ferry leaves at nine and the harbour closes at dusk.",
            "q",
            "q",
            "Code 12 opens the shed; the keeper counted forty gulls.",
            "The mason was called Ana.",
            "q",
            "It rained all week in the village by the sea.",
            "q");

    @ParameterizedTest
    @EnumSource(io.engram.engine.memory.MemorySpec.Kind.class)
    void hotMemoryAnswersAsMemoryReadBackFromStateBeforeEveryEvent(io.engram.engine.memory.MemorySpec.Kind policy)
            throws Exception {
        hotEqualsCold(settings(policy));
    }

    /**
     * With DuoAttention on top, the streaming heads' rows of blocks behind their window are dropped in engine memory and
     * left out of the stored blocks: a session read back from state must still answer as the hot one.
     */
    @ParameterizedTest
    @EnumSource(io.engram.engine.memory.MemorySpec.Kind.class)
    void withDuoAttentionDroppedStreamingRowsReadBackAnswerTheSame(io.engram.engine.memory.MemorySpec.Kind policy)
            throws Exception {
        java.nio.file.Path pattern = tmp.resolve("duo-" + policy + ".tsv");
        java.nio.file.Files.writeString(
                pattern, "0.9\t0.1\n0.8\t0.2\n"); // head 0 of each layer retrieval, head 1 streaming
        SessionSettings s = settings(policy);
        List<Answer> duo = hotEqualsCold(
                s.withMemory(new io.engram.engine.memory.DuoSpec(s.engine().memory(), 0.5, pattern.toString(), 4, 24)));
        List<Answer> plain = hotEqualsCold(s);
        // half the heads stream: the stored blocks behind their window hold half the K/V rows
        assertThat(duo.get(4).getMemory().getBytes())
                .isLessThan(plain.get(4).getMemory().getBytes() * 3 / 4);
    }

    private static List<Answer> hotEqualsCold(SessionSettings settings) throws Exception {
        List<StreamRecord<io.engram.schemas.EngramEvent>> events = new ArrayList<>();
        for (int i = 0; i < TURNS.size(); i++) {
            events.add(event(i)); // once: both runs see the same source offsets
        }
        List<Answer> hot = new ArrayList<>();
        try (var h = harness(settings)) {
            h.open();
            for (int i = 0; i < TURNS.size(); i++) {
                h.processElement(events.get(i));
            }
            hot.addAll(h.extractOutputValues());
        }
        List<Answer> cold = new ArrayList<>();
        OperatorSubtaskState snapshot = null;
        for (int i = 0; i < TURNS.size(); i++) {
            try (var h = harness(settings)) {
                if (snapshot != null) {
                    h.initializeState(snapshot);
                }
                h.open();
                h.processElement(events.get(i));
                cold.addAll(h.extractOutputValues());
                snapshot = h.snapshot(i + 1, i + 1);
            }
        }
        assertThat(hot).hasSize(5).hasSameSizeAs(cold);
        for (int i = 0; i < hot.size(); i++) {
            Answer a = hot.get(i);
            Answer b = cold.get(i);
            assertThat(a.getQueryId()).isEqualTo(b.getQueryId());
            assertThat(a.getText()).as("answer %d", i).isEqualTo(b.getText());
            assertThat(a.getMemoryTokens()).isEqualTo(b.getMemoryTokens());
            assertThat(a.getMemory().getFingerprint())
                    .as("answer %d", i)
                    .isEqualTo(b.getMemory().getFingerprint());
            assertThat(a.getMemory().getBlocks()).isEqualTo(b.getMemory().getBlocks());
            assertThat(a.getRetrieved()).isEqualTo(b.getRetrieved());
            assertThat(a.getCitations()).isEqualTo(b.getCitations());
        }
        return hot;
    }

    /** Windows small enough that the stream (~150 tokens) leaves them: init 4 + local 24, two units or 16 tokens. */
    private static SessionSettings settings(io.engram.engine.memory.MemorySpec.Kind policy) {
        var m = SmallMemorySpecs.of(policy, 24);
        return SessionSettings.of(
                        SessionMemoryOperatorTest.model.toString(),
                        8,
                        16,
                        1,
                        new SessionSettings.Answers(6, 4, 0),
                        new SessionSettings.Batching(8, 0),
                        SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20))
                .withMemory(m);
    }

    private static StreamRecord<io.engram.schemas.EngramEvent> event(int i) {
        String t = TURNS.get(i);
        return t.equals("q") ? ev("s", "q" + i, query("q" + i)) : ev("s", "c" + i, text(t));
    }
}
