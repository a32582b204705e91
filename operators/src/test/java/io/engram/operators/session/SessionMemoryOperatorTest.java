package io.engram.operators.session;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.schemas.Answer;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.ControlAction;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SourceCoordinates;
import io.engram.schemas.Summary;
import io.engram.schemas.SummaryKind;
import java.nio.file.Path;
import java.util.List;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The session operator on Flink's keyed test harness: state written and cleared, outputs, snapshot and restore. */
class SessionMemoryOperatorTest {
    @TempDir
    static Path tmp;

    static Path model;
    static long offset;

    @BeforeAll
    static void model() {
        EngramSchemas.trustEngramClasses();
        model = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.QWEN2, DType.F32, 42);
    }

    static KeyedOneInputStreamOperatorTestHarness<String, EngramEvent, Answer> harness(int summaryInterval)
            throws Exception {
        return harness(summaryInterval, 8, 0);
    }

    static KeyedOneInputStreamOperatorTestHarness<String, EngramEvent, Answer> harness(
            int summaryInterval, int maxBatch, long windowMillis) throws Exception {
        return harness(SessionSettings.of(
                model.toString(),
                8,
                16,
                1,
                new SessionSettings.Answers(6, 4, summaryInterval),
                new SessionSettings.Batching(maxBatch, windowMillis),
                SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20)));
    }

    static KeyedOneInputStreamOperatorTestHarness<String, EngramEvent, Answer> harness(SessionSettings s)
            throws Exception {
        var h = new KeyedOneInputStreamOperatorTestHarness<>(
                new SessionMemoryOperator(s), EngramEvent::getSessionId, Types.STRING);
        h.setup();
        return h;
    }

    static StreamRecord<EngramEvent> ev(String session, String id, Object payload) {
        return new StreamRecord<>(EngramEvent.newBuilder()
                .setSessionId(session)
                .setEventId(id)
                .setTimestampMs(5L)
                .setPayload(payload)
                .setSource(new SourceCoordinates("in", 0, offset++))
                .build());
    }

    static ContentEvent text(String t) {
        return ContentEvent.newBuilder()
                .setKind(ContentKind.DIALOGUE_TURN)
                .setText(t)
                .setRole("user")
                .build();
    }

    static QueryEvent query(String id) {
        return new QueryEvent(
                id,
                "What is the code?",
                GenerationOptions.newBuilder()
                        .setMaxNewTokens(4)
                        .setTemperature(0f)
                        .setStop(List.of())
                        .build());
    }

    @Test
    void answersFromStateSurviveSnapshotAndResetClearsEverything() throws Exception {
        OperatorSubtaskState snapshot;
        Answer before;
        try (var h = harness(0)) {
            h.open();
            long c0 = offset;
            h.processElement(ev("s1", "s1-c0", text("The vault code is 7481.")));
            h.processElement(ev("s1", "s1-c1", text("My sister lives in Porto.")));
            h.processElement(ev("s2", "s2-c0", text("The vault code is 1234.")));
            h.processElement(ev("s1", "q1", query("q1")));
            assertThat(h.extractOutputValues()).singleElement().satisfies(a -> {
                assertThat(a.getSessionId()).isEqualTo("s1");
                assertThat(a.getGeneratedTokens()).isEqualTo(4);
                assertThat(a.getCitations())
                        .isNotEmpty()
                        .allSatisfy(c -> assertThat(c.getSegment().getEventId()).startsWith("s1-"));
                // the memory the answer attended to: s1's two events, up to the question
                assertThat(a.getRetrieved()).isNotEmpty();
                assertThat(a.getRetrieved().getLast().getEndToken()).isEqualTo(a.getMemoryTokens());
                assertThat(a.getRetrieved().stream()
                                .flatMap(r -> r.getSources().stream())
                                .distinct()
                                .toList())
                        .containsExactly(new SourceCoordinates("in", 0, c0), new SourceCoordinates("in", 0, c0 + 1));
            });
            before = h.extractOutputValues().get(0);
            assertThat(h.numKeyedStateEntries()).isPositive();
            snapshot = h.snapshot(1L, 1L);
        }
        try (var h = harness(0)) {
            h.initializeState(snapshot);
            h.open();
            h.processElement(ev("s1", "q1-again", query("q1-again")));
            Answer after = h.extractOutputValues().get(0);
            assertThat(after.getText()).isEqualTo(before.getText());
            assertThat(after.getCitations()).isEqualTo(before.getCitations());
            assertThat(after.getRetrieved()).isEqualTo(before.getRetrieved());
            assertThat(after.getMemory().getFingerprint())
                    .isEqualTo(before.getMemory().getFingerprint());
            h.processElement(ev("s1", "r", new ControlEvent(ControlAction.RESET)));
            h.processElement(ev("s2", "r2", new ControlEvent(ControlAction.CLOSE_SESSION)));
            assertThat(h.numKeyedStateEntries())
                    .as("reset and close leave no state behind")
                    .isZero();
            h.processElement(ev("s1", "q2", query("q2")));
            List<DeadLetter> dead = List.copyOf(h.getSideOutput(SessionMemoryOperator.DEAD_LETTERS)).stream()
                    .map(StreamRecord::getValue)
                    .toList();
            assertThat(dead).singleElement().satisfies(d -> {
                assertThat(d.getErrorClass()).isEqualTo(ErrorClass.UNKNOWN_SESSION);
                assertThat(d.getEventId()).isEqualTo("q2");
            });
            assertThat(h.extractOutputValues()).hasSize(1);
        }
    }

    @Test
    void deviceAutoOpensTheEngineWhereverItRunsAndAnswersAsTheCpuWithoutAGpu() throws Exception {
        SessionSettings cpu = SessionSettings.of(
                model.toString(),
                8,
                16,
                1,
                new SessionSettings.Answers(6, 4, 0),
                new SessionSettings.Batching(8, 0),
                SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20));
        SessionSettings auto = cpu.withDevice(
                new io.engram.engine.backend.Backends.DeviceSettings(io.engram.engine.backend.Backends.Device.AUTO, 0));
        List<Answer> answers = new java.util.ArrayList<>();
        for (SessionSettings s : List.of(cpu, auto)) {
            try (var h = harness(s)) {
                h.open();
                h.processElement(ev("s1", "s1-c0", text("The vault code is 7481.")));
                h.processElement(ev("s1", "q1", query("q1")));
                assertThat(h.extractOutputValues()).singleElement().satisfies(a -> {
                    assertThat(a.getGeneratedTokens()).isEqualTo(4);
                    assertThat(a.getCitations()).isNotEmpty();
                });
                answers.add(h.extractOutputValues().get(0));
            }
        }
        if (io.engram.engine.backend.cuda.CudaDevice.unavailableReason().isPresent()) {
            assertThat(answers.get(1).getText())
                    .as("AUTO without CUDA is the CPU engine")
                    .isEqualTo(answers.get(0).getText());
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(
            value = io.engram.engine.memory.MemorySpec.Kind.class,
            names = {"STREAMING", "INFLLM", "EMLLM", "SIRLLM"})
    void boundedMemoryPoliciesAnswerOverLongSessionsAcrossEventsAndARestore(
            io.engram.engine.memory.MemorySpec.Kind kind) throws Exception {
        io.engram.engine.memory.MemorySpec m = SmallMemorySpecs.of(kind, 16);
        SessionSettings settings = SessionSettings.of(
                        model.toString(),
                        8,
                        16,
                        1,
                        new SessionSettings.Answers(6, 4, 0),
                        new SessionSettings.Batching(8, 0),
                        SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20))
                .withMemory(m);
        OperatorSubtaskState snapshot;
        Answer before;
        try (var h = harness(settings)) {
            h.open();
            for (int i = 0; i < 14; i++) {
                h.processElement(ev(
                        "s1", "s1-c" + i, text("Note " + i + ": the keeper counted " + (40 + i) + " puffins today.")));
                h.processElement(ev("s2", "s2-c" + i, text("Other " + i + ": nothing to report.")));
            }
            h.processElement(ev("s1", "q1", query("q1")));
            h.processElement(ev("s2", "q2", query("q2")));
            before = h.extractOutputValues().get(0);
            assertThat(h.extractOutputValues()).hasSize(2).allSatisfy(a -> {
                assertThat(a.getGeneratedTokens()).isEqualTo(4);
                assertThat(a.getCitations())
                        .allSatisfy(c -> assertThat(c.getSegment().getEventId()).startsWith(a.getSessionId() + "-"));
            });
            assertThat(h.getSideOutput(SessionMemoryOperator.DEAD_LETTERS))
                    .as("no dead letters")
                    .isNull();
            snapshot = h.snapshot(1L, 1L);
        }
        try (var h = harness(settings)) {
            h.initializeState(snapshot);
            h.open();
            // the policy's state (units and their keys, boundaries, retained tokens) came back from keyed state
            h.processElement(ev("s1", "q1-again", query("q1-again")));
            Answer after = h.extractOutputValues().get(0);
            assertThat(after.getText()).as("same answer after the restore").isEqualTo(before.getText());
            assertThat(after.getCitations()).isEqualTo(before.getCitations());
            h.processElement(ev("s1", "s1-c99", text("One more note after the restore.")));
            h.processElement(ev("s1", "q3", query("q3")));
            assertThat(h.extractOutputValues())
                    .hasSize(2)
                    .allSatisfy(a -> assertThat(a.getGeneratedTokens()).isEqualTo(4));
            h.processElement(ev("s1", "r", new ControlEvent(ControlAction.RESET)));
            h.processElement(ev("s2", "r2", new ControlEvent(ControlAction.CLOSE_SESSION)));
            assertThat(h.numKeyedStateEntries())
                    .as("reset and close leave no policy state behind")
                    .isZero();
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({
        "FULL, DROP_OLDEST",
        "EMLLM, DROP_LOWEST_SCORED",
        "INFLLM, DROP_OLDEST"
    })
    void retentionKeepsSessionsUnderTheirCapWithASummaryAndARecordOfWhatWent(
            io.engram.engine.memory.MemorySpec.Kind kind, io.engram.schemas.RetentionPolicy retention)
            throws Exception {
        io.engram.engine.memory.MemorySpec m = SmallMemorySpecs.of(kind, 16);
        SessionSettings settings = SessionSettings.of(
                        model.toString(),
                        8,
                        16,
                        1,
                        new SessionSettings.Answers(6, 4, 0),
                        new SessionSettings.Batching(8, 0),
                        SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20))
                .withMemory(m)
                .withRetention(new SessionSettings.Retention(retention, 64, 0));
        OperatorSubtaskState snapshot;
        try (var h = harness(settings)) {
            h.open();
            for (int i = 0; i < 12; i++) {
                h.processElement(ev(
                        "s1", "s1-c" + i, text("Note " + i + ": the keeper counted " + (40 + i) + " puffins today.")));
                h.processElement(ev("s2", "s2-c" + i, text("Short " + i + ".")));
            }
            h.processElement(ev("s1", "q1", query("q1")));
            h.processElement(ev("s2", "q2", query("q2")));
            List<Answer> answers = h.extractOutputValues();
            assertThat(answers).hasSize(2);
            Answer a1 = answers.stream()
                    .filter(a -> a.getSessionId().equals("s1"))
                    .findFirst()
                    .orElseThrow();
            Answer a2 = answers.stream()
                    .filter(a -> a.getSessionId().equals("s2"))
                    .findFirst()
                    .orElseThrow();
            assertThat(a1.getMemory().getTokens())
                    .as("s1 stored tokens within the cap")
                    .isLessThanOrEqualTo(64);
            assertThat(a1.getCitations())
                    .allSatisfy(c -> assertThat(c.getSegment().getEventId()).startsWith("s1-"));
            assertThat(a2.getMemory().getTokens()).isLessThanOrEqualTo(64);
            // before anything is dropped, an episode summary covers it: summaries tile each session's stream
            List<Summary> sums = h.getSideOutput(SessionMemoryOperator.SUMMARIES).stream()
                    .map(StreamRecord::getValue)
                    .toList();
            for (String s : List.of("s1", "s2")) {
                List<Summary> mine =
                        sums.stream().filter(x -> x.getSessionId().equals(s)).toList();
                assertThat(mine)
                        .isNotEmpty()
                        .allSatisfy(x -> assertThat(x.getKind()).isEqualTo(SummaryKind.EPISODE));
                assertThat(mine.get(0).getFirstToken()).isZero();
                for (int i = 1; i < mine.size(); i++) {
                    assertThat(mine.get(i).getFirstToken())
                            .isEqualTo(mine.get(i - 1).getLastToken() + 1);
                }
            }
            snapshot = h.snapshot(1L, 1L);
        }
        try (var h = harness(settings)) {
            h.initializeState(snapshot);
            h.open();
            h.processElement(ev("s1", "s1-c99", text("One more note after the restore.")));
            h.processElement(ev("s1", "q3", query("q3")));
            assertThat(h.extractOutputValues()).singleElement().satisfies(a -> {
                assertThat(a.getGeneratedTokens()).isEqualTo(4);
                assertThat(a.getMemory().getTokens()).isLessThanOrEqualTo(64);
            });
            h.processElement(ev("s1", "r", new ControlEvent(ControlAction.RESET)));
            h.processElement(ev("s2", "r2", new ControlEvent(ControlAction.CLOSE_SESSION)));
            assertThat(h.numKeyedStateEntries())
                    .as("reset and close leave no dropped-unit records behind")
                    .isZero();
        }
    }

    @Test
    void retentionChoosesOldestOrLeastSurprisingBlocksAndNeverTheFirstOrTheRecentOnes() {
        var blocks = List.of(
                new io.engram.state.retention.Retention.Candidate(0, 0, 8, 100, 5.0),
                new io.engram.state.retention.Retention.Candidate(1, 8, 8, 100, 1.0),
                new io.engram.state.retention.Retention.Candidate(2, 16, 8, 100, 9.0),
                new io.engram.state.retention.Retention.Candidate(3, 24, 8, 100, 0.5),
                new io.engram.state.retention.Retention.Candidate(4, 32, 8, 100, 0.1),
                new io.engram.state.retention.Retention.Candidate(5, 40, 8, 100, 0.2));
        assertThat(io.engram.state.retention.Retention.choose(
                        blocks, io.engram.schemas.RetentionPolicy.DROP_OLDEST, 32, 0, 2))
                .extracting(io.engram.state.retention.Retention.Candidate::id)
                .containsExactly(1L, 2L);
        assertThat(io.engram.state.retention.Retention.choose(
                        blocks, io.engram.schemas.RetentionPolicy.DROP_LOWEST_SCORED, 32, 0, 2))
                .extracting(io.engram.state.retention.Retention.Candidate::id)
                .containsExactly(3L, 1L);
        assertThat(io.engram.state.retention.Retention.choose(
                        blocks, io.engram.schemas.RetentionPolicy.DROP_OLDEST, 0, 350, 2))
                .extracting(io.engram.state.retention.Retention.Candidate::id)
                .containsExactly(1L, 2L, 3L);
        assertThat(io.engram.state.retention.Retention.choose(
                        blocks, io.engram.schemas.RetentionPolicy.KEEP_ALL, 8, 0, 2))
                .isEmpty();
        // a cap below what must stay: only the droppable blocks go
        assertThat(io.engram.state.retention.Retention.choose(
                        blocks, io.engram.schemas.RetentionPolicy.DROP_OLDEST, 1, 0, 2))
                .extracting(io.engram.state.retention.Retention.Candidate::id)
                .containsExactly(1L, 2L, 3L);
    }

    @Test
    void withEmLlmEpisodeSummariesEndAtEventBoundariesAndTileTheStream() throws Exception {
        io.engram.engine.memory.MemorySpec m = SmallMemorySpecs.of(io.engram.engine.memory.MemorySpec.Kind.EMLLM, 16);
        SessionSettings settings = SessionSettings.of(
                        model.toString(),
                        8,
                        16,
                        1,
                        new SessionSettings.Answers(6, 4, 20),
                        new SessionSettings.Batching(8, 0),
                        SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20))
                .withMemory(m);
        try (var h = harness(settings)) {
            h.open();
            long tokens = 0;
            for (int i = 0; i < 8; i++) {
                h.processElement(ev(
                        "s",
                        "c" + i,
                        text("Turn " + i + ": the keeper counted " + (40 + i) + " puffins on the cliffs today.")));
            }
            h.processElement(ev("s", "q", query("q")));
            tokens = h.extractOutputValues().get(0).getMemory().getTokens();
            List<Summary> sums = h.getSideOutput(SessionMemoryOperator.SUMMARIES).stream()
                    .map(StreamRecord::getValue)
                    .toList();
            assertThat(sums).isNotEmpty();
            assertThat(sums.get(0).getFirstToken()).isZero();
            for (int i = 1; i < sums.size(); i++) {
                assertThat(sums.get(i).getFirstToken())
                        .as("episodes tile the stream")
                        .isEqualTo(sums.get(i - 1).getLastToken() + 1);
            }
            for (Summary x : sums) {
                assertThat(x.getLastToken() - x.getFirstToken() + 1)
                        .as("at least the interval")
                        .isGreaterThanOrEqualTo(20);
                assertThat(x.getLastToken()).isLessThan(tokens);
            }
        }
    }

    @Test
    void episodeSummariesAtTheConfiguredIntervalAndBadContentIsDeadLettered() throws Exception {
        try (var h = harness(20)) {
            h.open();
            for (int i = 0; i < 6; i++) {
                h.processElement(ev(
                        "s",
                        "c" + i,
                        text("Turn " + i + ": the keeper counted " + (40 + i) + " puffins on the cliffs today.")));
            }
            h.processElement(ev("s", "blank", text("   ")));
            List<Summary> sums = h.getSideOutput(SessionMemoryOperator.SUMMARIES).stream()
                    .map(StreamRecord::getValue)
                    .toList();
            assertThat(sums)
                    .isNotEmpty()
                    .allSatisfy(s -> assertThat(s.getKind()).isEqualTo(SummaryKind.EPISODE));
            for (int i = 1; i < sums.size(); i++) {
                assertThat(sums.get(i).getFirstToken())
                        .as("episodes are contiguous")
                        .isEqualTo(sums.get(i - 1).getLastToken() + 1);
            }
            assertThat(sums.get(0).getFirstToken()).isZero();
            assertThat(h.getSideOutput(SessionMemoryOperator.DEAD_LETTERS))
                    .singleElement()
                    .satisfies(r -> assertThat(r.getValue().getErrorClass()).isEqualTo(ErrorClass.INVALID_EVENT));
        }
    }

    @Test
    void queriesOfSeveralSessionsWaitForTheWindowAreAnsweredTogetherAndSurviveASnapshot() throws Exception {
        List<String> immediate = new java.util.ArrayList<>();
        try (var h = harness(0, 8, 0)) {
            h.open();
            for (String s : List.of("a", "b", "c")) {
                h.processElement(ev(s, s + "-c0", text("Session " + s + " keeps the code " + s.hashCode() + ".")));
            }
            for (String s : List.of("a", "b", "c")) {
                h.processElement(ev(s, s + "-q", query(s + "-q")));
            }
            h.extractOutputValues().forEach(a -> immediate.add(a.getQueryId() + ":" + a.getText()));
        }
        assertThat(immediate).hasSize(3);
        OperatorSubtaskState snapshot;
        try (var h = harness(0, 8, 1000)) {
            h.setProcessingTime(0);
            h.open();
            for (String s : List.of("a", "b", "c")) {
                h.processElement(ev(s, s + "-c0", text("Session " + s + " keeps the code " + s.hashCode() + ".")));
            }
            h.processElement(ev("a", "a-q", query("a-q")));
            h.processElement(ev("b", "b-q", query("b-q")));
            assertThat(h.extractOutputValues())
                    .as("parked until the window closes")
                    .isEmpty();
            snapshot = h.snapshot(1L, 1L);
        }
        try (var h = harness(0, 8, 1000)) {
            h.setProcessingTime(0);
            h.initializeState(snapshot);
            h.open();
            h.processElement(ev("c", "c-q", query("c-q")));
            assertThat(h.extractOutputValues()).isEmpty();
            h.setProcessingTime(1001); // the restored timers fire: all three parked queries go in one batch
            List<String> batched = h.extractOutputValues().stream()
                    .map(a -> a.getQueryId() + ":" + a.getText())
                    .toList();
            assertThat(batched).containsExactlyInAnyOrderElementsOf(immediate);
            assertThat(h.extractOutputValues())
                    .allSatisfy(a -> assertThat(a.getTimings().getTotalMs()).isNotNegative());
        }
    }

    @Test
    void aFullBatchIsAnsweredAtOnceAndContentAfterAQueryWaitsForItsAnswer() throws Exception {
        try (var h = harness(0, 2, 60_000)) {
            h.setProcessingTime(0);
            h.open();
            h.processElement(ev("a", "a-c0", text("The code is 1.")));
            h.processElement(ev("b", "b-c0", text("The code is 2.")));
            h.processElement(ev("a", "a-q", query("a-q")));
            assertThat(h.extractOutputValues()).isEmpty();
            // content for 'a' after its query: the query is answered first, over the memory it was asked against
            h.processElement(ev("a", "a-c1", text("The code changed to 3.")));
            assertThat(h.extractOutputValues()).singleElement().satisfies(a -> {
                assertThat(a.getQueryId()).isEqualTo("a-q");
                assertThat(a.getCitations())
                        .allSatisfy(c -> assertThat(c.getSegment().getEventId()).isEqualTo("a-c0"));
            });
            h.processElement(ev("a", "a-q2", query("a-q2")));
            h.processElement(ev("b", "b-q", query("b-q")));
            assertThat(h.extractOutputValues())
                    .as("two parked sessions fill the batch of 2")
                    .hasSize(3);
        }
    }
}
