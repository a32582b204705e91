package io.engram.operators.session;

import static io.engram.operators.session.SessionMemoryOperatorTest.ev;
import static io.engram.operators.session.SessionMemoryOperatorTest.query;
import static io.engram.operators.session.SessionMemoryOperatorTest.text;
import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.schemas.Answer;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.ErrorClass;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Failures while the session operator handles one session's event (engine, store, a write cut short, an event too long)
 * become dead letters; the job goes on, the session keeps the memory it had, other sessions answer as without the failure.
 */
class SessionFailureIsolationTest {
    static final String FACTS = "The vault code is 7481. My sister lives in Porto and keeps three cats and a parrot. ";

    @TempDir
    static Path tmp;

    static Path model;

    @BeforeAll
    static void model() {
        EngramSchemas.trustEngramClasses();
        model = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.QWEN2, DType.F32, 42);
    }

    static SessionSettings settings() {
        return SessionSettings.of(
                model.toString(),
                8,
                16,
                1,
                new SessionSettings.Answers(6, 4, 0),
                new SessionSettings.Batching(8, 0),
                SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20));
    }

    static KeyedOneInputStreamOperatorTestHarness<String, EngramEvent, Answer> harness(
            SessionSettings s, SessionFaults f) throws Exception {
        var h = new KeyedOneInputStreamOperatorTestHarness<>(
                new SessionMemoryOperator(s, f), EngramEvent::getSessionId, Types.STRING);
        h.setup();
        h.open();
        return h;
    }

    static SessionFaults fail(SessionFaults.Point point, String session, int times) {
        return new SessionFaults(Set.of(point), 1.0, 7, Set.of(session), times);
    }

    static List<DeadLetter> dead(KeyedOneInputStreamOperatorTestHarness<String, EngramEvent, Answer> h) {
        var out = h.getSideOutput(SessionMemoryOperator.DEAD_LETTERS);
        return out == null
                ? List.of()
                : out.stream().map(StreamRecord::getValue).toList();
    }

    static Answer answerOf(KeyedOneInputStreamOperatorTestHarness<String, EngramEvent, Answer> h, String session) {
        return h.extractOutputValues().stream()
                .filter(a -> a.getSessionId().equals(session))
                .reduce((a, b) -> b)
                .orElseThrow();
    }

    @Test
    void aFailedIngestIsDeadLetteredUnappliedAndEverySessionAnswersAsIfItNeverCame() throws Exception {
        Answer refA;
        Answer refB;
        try (var h = harness(settings(), SessionFaults.NONE)) {
            h.processElement(ev("b", "b0", text(FACTS)));
            h.processElement(ev("a", "a1", text("The ferry leaves at nine.")));
            h.processElement(ev("a", "qa", query("qa")));
            h.processElement(ev("b", "qb", query("qb")));
            refA = answerOf(h, "a");
            refB = answerOf(h, "b");
        }
        try (var h = harness(settings(), fail(SessionFaults.Point.INGEST, "a", 1))) {
            h.processElement(ev("b", "b0", text(FACTS)));
            h.processElement(ev("a", "a0", text(FACTS)));
            h.processElement(ev("a", "a1", text("The ferry leaves at nine.")));
            h.processElement(ev("a", "qa", query("qa")));
            h.processElement(ev("b", "qb", query("qb")));
            assertThat(dead(h)).singleElement().satisfies(d -> {
                assertThat(d.getErrorClass()).isEqualTo(ErrorClass.PROCESSING_FAILED);
                assertThat(d.getEventId()).isEqualTo("a0");
                assertThat(d.getException()).contains("InjectedFault");
                assertThat(d.getReason()).contains("not applied");
            });
            Answer a = answerOf(h, "a");
            assertThat(a.getText()).isEqualTo(refA.getText());
            assertThat(a.getMemory().getFingerprint())
                    .as("a's memory is a1 alone")
                    .isEqualTo(refA.getMemory().getFingerprint());
            assertThat(a.getMemoryTokens()).isEqualTo(refA.getMemoryTokens());
            assertThat(answerOf(h, "b").getText()).isEqualTo(refB.getText());
            assertThat(answerOf(h, "b").getMemory().getFingerprint())
                    .isEqualTo(refB.getMemory().getFingerprint());
        }
    }

    @Test
    void aQueryWhoseAnswerFailsIsDeadLetteredAndTheRestOfItsBatchIsAnswered() throws Exception {
        SessionSettings batched = SessionSettings.of(
                model.toString(),
                8,
                16,
                1,
                new SessionSettings.Answers(6, 4, 0),
                new SessionSettings.Batching(8, 60_000),
                SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20));
        try (var h = harness(batched, fail(SessionFaults.Point.ANSWER, "a", 2))) {
            h.processElement(ev("a", "a0", text(FACTS)));
            h.processElement(ev("b", "b0", text(FACTS)));
            h.processElement(ev("a", "qa", query("qa")));
            h.processElement(ev("b", "qb", query("qb")));
            h.setProcessingTime(
                    60_001); // the window closes: one batch of both, which fails; each is then answered alone
            assertThat(h.extractOutputValues())
                    .singleElement()
                    .satisfies(x -> assertThat(x.getSessionId()).isEqualTo("b"));
            assertThat(dead(h)).singleElement().satisfies(d -> {
                assertThat(d.getErrorClass()).isEqualTo(ErrorClass.PROCESSING_FAILED);
                assertThat(d.getEventId()).isEqualTo("qa");
            });
            h.processElement(ev("a", "qa2", query("qa2")));
            h.setProcessingTime(120_002);
            assertThat(h.extractOutputValues())
                    .as("a answers again once the engine does")
                    .hasSize(2);
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(io.engram.engine.memory.MemorySpec.Kind.class)
    void aWriteCutShortQuarantinesTheBlockItLeftInconsistentAndTheSessionAnswersFromTheRest(
            io.engram.engine.memory.MemorySpec.Kind policy) throws Exception {
        SessionSettings settings = settings().withMemory(SmallMemorySpecs.of(policy, 24));
        org.apache.flink.runtime.checkpoint.OperatorSubtaskState snapshot;
        int tokens;
        try (var h = harness(settings, SessionFaults.NONE)) {
            h.processElement(ev("a", "a0", text(FACTS)));
            int extra = 0;
            do { // end a0's memory inside a block, so the next event rewrites that block
                h.processElement(ev("a", "q" + extra, query("q" + extra)));
                tokens = answerOf(h, "a").getMemoryTokens();
                if (tokens % 8 != 0) {
                    break;
                }
                h.processElement(ev("a", "x" + extra, text("Yes.")));
            } while (++extra < 8);
            assertThat(tokens % 8).isNotZero();
            snapshot = h.snapshot(1L, 1L);
        }
        try (var h = new KeyedOneInputStreamOperatorTestHarness<>(
                new SessionMemoryOperator(settings, fail(SessionFaults.Point.WRITE, "a", 1)),
                EngramEvent::getSessionId,
                Types.STRING)) {
            h.setup();
            h.initializeState(snapshot);
            h.open();
            h.processElement(ev("b", "b0", text(FACTS)));
            // a1 extends a's last block: its new version is written, then the write is cut short before the index
            h.processElement(ev("a", "a1", text("The ferry leaves at nine and the harbour closes at dusk.")));
            long partialBlock = tokens / 8;
            assertThat(dead(h)).hasSize(2).satisfies(d -> {
                assertThat(d.get(0).getErrorClass()).isEqualTo(ErrorClass.PROCESSING_FAILED);
                assertThat(d.get(0).getEventId()).isEqualTo("a1");
                assertThat(d.get(1).getErrorClass()).isEqualTo(ErrorClass.CORRUPT_MEMORY);
                assertThat(d.get(1).getReason())
                        .contains("session a: block " + partialBlock + " quarantined (index checksum ")
                        .contains("never served again");
            });
            h.processElement(ev("a", "qa", query("qa")));
            h.processElement(ev("b", "qb", query("qb")));
            Answer a = answerOf(h, "a");
            assertThat(a.getQueryId()).isEqualTo("qa");
            assertThat(a.getMemory().getBlocks())
                    .as("the rest: every block before the quarantined one")
                    .isEqualTo((int) partialBlock);
            assertThat(a.getMemory().getTokens()).isEqualTo(partialBlock * 8);
            assertThat(answerOf(h, "b").getQueryId()).isEqualTo("qb");
            assertThat(dead(h))
                    .as("nothing more: the damaged block is gone from the index")
                    .hasSize(2);
            h.processElement(ev("a", "a2", text("The ferry leaves at nine.")));
            h.processElement(ev("a", "qa2", query("qa2")));
            assertThat(answerOf(h, "a").getQueryId()).isEqualTo("qa2");
            assertThat(answerOf(h, "a").getMemoryTokens()).isGreaterThan(a.getMemoryTokens());
            assertThat(dead(h)).hasSize(2);
        }
    }

    @Test
    void anEventOverTheTokenCapIsDeadLetteredTooLargeAndTheSessionIsUnaffected() throws Exception {
        try (var h = harness(settings().withLimits(new SessionSettings.Limits(12, 64)), SessionFaults.NONE)) {
            h.processElement(ev("a", "a0", text("Short.")));
            h.processElement(ev("a", "big", text(FACTS.repeat(20))));
            h.processElement(ev("a", "qa", query("qa")));
            assertThat(dead(h)).singleElement().satisfies(d -> {
                assertThat(d.getErrorClass()).isEqualTo(ErrorClass.TOO_LARGE);
                assertThat(d.getEventId()).isEqualTo("big");
                assertThat(d.getReason()).contains("over the cap of 12").contains("engram.engine.max-event-tokens");
            });
            assertThat(answerOf(h, "a").getMemoryTokens()).isLessThanOrEqualTo(12);
        }
    }

    @Test
    void aQueryIdIsUsedOncePerSessionAndAgainOnlyAfterAReset() throws Exception {
        try (var h = harness(settings(), SessionFaults.NONE)) {
            h.processElement(ev("a", "a0", text(FACTS)));
            h.processElement(ev("b", "b0", text(FACTS)));
            h.processElement(ev("a", "q", query("q")));
            h.processElement(ev("b", "q", query("q"))); // another session: its own id space
            h.processElement(ev("a", "q-dup", query("q")));
            assertThat(h.extractOutputValues()).hasSize(2);
            assertThat(dead(h)).singleElement().satisfies(d -> {
                assertThat(d.getErrorClass()).isEqualTo(ErrorClass.INVALID_EVENT);
                assertThat(d.getReason()).contains("query id q was already used in session a");
            });
            h.processElement(ev("a", "r", new io.engram.schemas.ControlEvent(io.engram.schemas.ControlAction.RESET)));
            h.processElement(ev("a", "a1", text(FACTS)));
            h.processElement(ev("a", "q-after-reset", query("q")));
            assertThat(h.extractOutputValues()).hasSize(3);
        }
    }

    @Test
    void queriesBeyondTheSessionsPendingCapAreDeadLetteredAndTheRestAnsweredInOrder() throws Exception {
        SessionSettings windowed = SessionSettings.of(
                        model.toString(),
                        8,
                        16,
                        1,
                        new SessionSettings.Answers(6, 4, 0),
                        new SessionSettings.Batching(8, 60_000),
                        SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20))
                .withLimits(new SessionSettings.Limits(16384, 2));
        try (var h = harness(windowed, SessionFaults.NONE)) {
            h.processElement(ev("a", "a0", text(FACTS)));
            for (int i = 0; i < 4; i++) {
                h.processElement(ev("a", "q" + i, query("q" + i)));
            }
            assertThat(dead(h)).extracting(DeadLetter::getEventId).containsExactly("q2", "q3");
            assertThat(dead(h)).allSatisfy(d -> {
                assertThat(d.getErrorClass()).isEqualTo(ErrorClass.TOO_LARGE);
                assertThat(d.getReason()).contains("already has 2 queries waiting");
            });
            h.setProcessingTime(60_001);
            assertThat(h.extractOutputValues()).extracting(Answer::getQueryId).containsExactly("q0", "q1");
            h.processElement(ev("a", "q4", query("q4")));
            h.setProcessingTime(120_002);
            assertThat(h.extractOutputValues()).extracting(Answer::getQueryId).containsExactly("q0", "q1", "q4");
        }
    }

    @Test
    void queriesParkedByTheListVersionMoveIntoTheQueueAndAreAnswered() throws Exception {
        SessionSettings windowed = SessionSettings.of(
                model.toString(),
                8,
                16,
                1,
                new SessionSettings.Answers(6, 4, 0),
                new SessionSettings.Batching(8, 60_000),
                SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20));
        try (var h = harness(windowed, SessionFaults.NONE)) {
            h.processElement(ev("a", "a0", text(FACTS)));
            // as a savepoint of the earlier version holds them: one list under the old state name
            org.apache.flink.runtime.state.KeyedStateBackend<String> backend =
                    ((SessionMemoryOperator) h.getOperator()).getKeyedStateBackend();
            backend.setCurrentKey("a");
            backend.getPartitionedState(
                            org.apache.flink.runtime.state.VoidNamespace.INSTANCE,
                            org.apache.flink.runtime.state.VoidNamespaceSerializer.INSTANCE,
                            PendingQueries.LEGACY)
                    .update(List.of(
                            ev("a", "old1", query("old1")).getValue(),
                            ev("a", "old2", query("old2")).getValue()));
            h.processElement(ev("a", "new", query("new")));
            h.processElement(ev("a", "a1", text("The ferry leaves at nine."))); // answers what waits first
            assertThat(h.extractOutputValues()).extracting(Answer::getQueryId).containsExactly("old1", "old2", "new");
            assertThat(dead(h)).isEmpty();
        }
    }
}
