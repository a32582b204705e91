package io.engram.operators.session;

import static io.engram.operators.session.SessionFailureIsolationTest.dead;
import static io.engram.operators.session.SessionFailureIsolationTest.fail;
import static io.engram.operators.session.SessionMemoryOperatorTest.ev;
import static io.engram.operators.session.SessionMemoryOperatorTest.query;
import static io.engram.operators.session.SessionMemoryOperatorTest.text;
import static org.assertj.core.api.Assertions.assertThat;

import io.engram.operators.ContentParts;
import io.engram.schemas.Answer;
import io.engram.schemas.AttributionCandidate;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.ErrorClass;
import java.util.List;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A long content event ingested as the decoder's parts (one call each, so checkpoints pass between them) is the same
 * memory as the event ingested whole: same tokens, answers and citations in the whole text's character offsets. When a
 * part fails, the parts after it are refused, so the event never has a gap inside.
 */
class ContentPartsIngestTest {
    @TempDir
    static java.nio.file.Path tmp;

    static final String LONG =
            ("The keeper counted forty gulls on the cliffs. The vault code is 7481. My sister lives in "
                            + "Porto and keeps three cats. The ferry leaves at nine and the harbour closes at dusk. ")
                    .repeat(12);

    @BeforeAll
    static void model() {
        io.engram.schemas.EngramSchemas.trustEngramClasses();
        SessionFailureIsolationTest.model = io.engram.engine.model.synthetic.TinyModels.write(
                tmp.resolve("m"),
                io.engram.engine.model.synthetic.TinyModels.Variant.QWEN2,
                io.engram.engine.tensor.DType.F32,
                42);
    }

    private static KeyedOneInputStreamOperatorTestHarness<String, EngramEvent, Answer> harness(SessionFaults faults)
            throws Exception {
        var h = new KeyedOneInputStreamOperatorTestHarness<>(
                new SessionMemoryOperator(
                        SessionFailureIsolationTest.settings()
                                .withMemory(new io.engram.engine.memory.MemorySpec.Full()),
                        faults),
                EngramEvent::getSessionId,
                Types.STRING);
        h.setup();
        return h;
    }

    private static Answer ask(KeyedOneInputStreamOperatorTestHarness<String, EngramEvent, Answer> h, String id)
            throws Exception {
        h.processElement(ev("a", id, query(id)));
        return h.extractOutputValues().getLast();
    }

    @Test
    void partsMakeTheSameMemoryAsTheWholeEventWithCitationsInItsOffsets() throws Exception {
        StreamRecord<EngramEvent> whole = ev("a", "doc", text(LONG));
        List<EngramEvent> parts = ContentParts.split(whole.getValue(), 300);
        assertThat(parts).hasSizeGreaterThan(4);
        List<AttributionCandidate> one;
        try (var h = harness(SessionFaults.NONE)) {
            h.open();
            h.processElement(ev("a", "c0", text("Yes.")));
            h.processElement(whole);
            ask(h, "q1");
            one = candidates(h);
        }
        List<AttributionCandidate> split;
        try (var h = harness(SessionFaults.NONE)) {
            h.open();
            h.processElement(ev("a", "c0", text("Yes.")));
            for (EngramEvent p : parts) {
                h.processElement(new StreamRecord<>(p));
            }
            ask(h, "q1");
            split = candidates(h);
            assertThat(dead(h)).isEmpty();
        }
        // the same tokens with the same provenance (K/V may differ in the last bits: prefill steps start at each part)
        assertThat(split).hasSameSizeAs(one).hasSizeGreaterThan(2);
        for (int i = 0; i < one.size(); i++) {
            AttributionCandidate a = one.get(i);
            AttributionCandidate b = split.get(i);
            assertThat(b.getTokens()).as("segment %d tokens", i).isEqualTo(a.getTokens());
            assertThat(b.getFirstSeq()).isEqualTo(a.getFirstSeq());
            assertThat(b.getEventIndex()).isEqualTo(a.getEventIndex());
            assertThat(b.getSegment().getCharStart()).isEqualTo(a.getSegment().getCharStart());
            assertThat(b.getSegment().getCharEnd()).isEqualTo(a.getSegment().getCharEnd());
            assertThat(b.getSegment().getExcerpt()).isEqualTo(a.getSegment().getExcerpt());
            if (b.getSegment().getEventId().equals("doc")) {
                assertThat(LONG.substring(
                                        b.getSegment().getCharStart(),
                                        b.getSegment().getCharEnd())
                                .strip())
                        .as("offsets in the whole text")
                        .isEqualTo(b.getSegment().getExcerpt().strip());
            }
        }
        assertThat(split.stream()
                        .filter(c -> c.getSegment().getEventId().equals("doc"))
                        .count())
                .isGreaterThan(2);
    }

    private static List<AttributionCandidate> candidates(
            KeyedOneInputStreamOperatorTestHarness<String, EngramEvent, Answer> h) {
        return h.getSideOutput(SessionMemoryOperator.ATTRIBUTION_REQUESTS).stream()
                .map(StreamRecord::getValue)
                .toList()
                .getLast()
                .getCandidates();
    }

    @Test
    void afterAFailedPartTheRestOfTheEventIsRefusedAndTheSessionGoesOn() throws Exception {
        List<EngramEvent> parts = ContentParts.split(ev("a", "doc", text(LONG)).getValue(), 300);
        OperatorSubtaskState snapshot;
        try (var h = harness(SessionFaults.NONE)) {
            h.open();
            h.processElement(new StreamRecord<>(parts.get(0)));
            snapshot = h.snapshot(1L, 1L);
        }
        try (var h = harness(fail(SessionFaults.Point.INGEST, "a", 1))) {
            h.initializeState(snapshot);
            h.open();
            for (EngramEvent p : parts.subList(1, parts.size())) {
                h.processElement(new StreamRecord<>(p));
            }
            assertThat(dead(h)).hasSize(parts.size() - 1).satisfies(d -> {
                assertThat(d.get(0).getErrorClass()).isEqualTo(ErrorClass.PROCESSING_FAILED);
                for (int i = 1; i < d.size(); i++) {
                    assertThat(d.get(i).getErrorClass()).isEqualTo(ErrorClass.INVALID_EVENT);
                    assertThat(d.get(i).getReason())
                            .contains("part " + (i + 2) + " of " + parts.size())
                            .contains("an earlier part of the event was not");
                }
            });
            Answer a = ask(h, "q");
            assertThat(a.getCitations().stream().map(c -> c.getSegment()))
                    .allSatisfy(s -> assertThat(s.getCharEnd())
                            .isLessThanOrEqualTo(parts.get(1).getPart().getCharOffset()));
            h.processElement(ev("a", "c1", text("The ferry leaves at nine.")));
            assertThat(ask(h, "q2").getMemoryTokens()).isGreaterThan(a.getMemoryTokens());
            assertThat(dead(h)).hasSize(parts.size() - 1);
        }
    }
}
