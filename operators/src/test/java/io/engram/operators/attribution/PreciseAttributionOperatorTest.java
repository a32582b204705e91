package io.engram.operators.attribution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;

import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.operators.session.SessionMemoryOperator;
import io.engram.operators.session.SessionSettings;
import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionMethod;
import io.engram.schemas.AttributionRequest;
import io.engram.schemas.AttributionStatus;
import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.GenerationOptions;
import io.engram.schemas.QueryEvent;
import io.engram.schemas.SourceCoordinates;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.operators.KeyedProcessOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The session operator's attribution outputs (FAST record, request) and the precise operator's sliced search: it emits
 * one PRECISE record per request, the same when its state was snapshotted mid-search and restored into a new
 * instance, and leaves no state or timer behind.
 */
class PreciseAttributionOperatorTest {
    @TempDir
    static Path tmp;

    static Path model;

    @BeforeAll
    static void model() {
        EngramSchemas.trustEngramClasses();
        model = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
    }

    static SessionSettings settings() {
        return SessionSettings.of(
                        model.toString(),
                        8,
                        16,
                        1,
                        new SessionSettings.Answers(6, 4, 0),
                        new SessionSettings.Batching(8, 0),
                        SessionSettings.Storage.of(io.engram.state.codec.KvDType.F32, 1L << 20))
                .withAttribution(new AttributionSettings(AttributionSettings.Tier.BOTH, 3, 5, 6, 400, 2, 0.2, 2.0, 1));
    }

    /** Runs the session operator over a few events and a query; returns its attribution request (and checks the rest). */
    static AttributionRequest request() throws Exception {
        try (var h = new KeyedOneInputStreamOperatorTestHarness<>(
                new SessionMemoryOperator(settings()), EngramEvent::getSessionId, Types.STRING)) {
            h.open();
            long offset = 0;
            for (String t : List.of(
                    "The lamp was lit at dusk by the keeper.",
                    "The vault code is 4471, said the keeper.",
                    "Gulls nested on the cliffs all summer long.")) {
                h.processElement(new StreamRecord<>(event(
                        "s",
                        "c" + offset,
                        ContentEvent.newBuilder()
                                .setKind(ContentKind.DOCUMENT_CHUNK)
                                .setText(t)
                                .build(),
                        offset++)));
            }
            h.processElement(new StreamRecord<>(event(
                    "s",
                    "q",
                    new QueryEvent(
                            "q1",
                            "What is the vault code?",
                            GenerationOptions.newBuilder()
                                    .setMaxNewTokens(4)
                                    .setTemperature(0f)
                                    .setStop(List.of())
                                    .build()),
                    offset)));
            Answer a = (Answer) h.extractOutputValues().get(0);
            List<Attribution> fast = values(h.getSideOutput(SessionMemoryOperator.ATTRIBUTIONS));
            assertThat(fast).singleElement().satisfies(f -> {
                assertThat(f.getMethod()).isEqualTo(AttributionMethod.FAST);
                assertThat(f.getQueryId()).isEqualTo("q1");
                assertThat(f.getSegments())
                        .isEqualTo(a.getCitations().stream()
                                .map(c -> c.getSegment())
                                .toList());
            });
            List<AttributionRequest> requests = values(h.getSideOutput(SessionMemoryOperator.ATTRIBUTION_REQUESTS));
            assertThat(requests).singleElement().satisfies(r -> {
                assertThat(r.getQueryId()).isEqualTo("q1");
                assertThat(r.getAnswerTokens()).hasSize(a.getGeneratedTokens());
                assertThat(r.getCandidates()).isNotEmpty().hasSizeLessThanOrEqualTo(6);
            });
            return requests.get(0);
        }
    }

    static EngramEvent event(String session, String id, Object payload, long offset) {
        return EngramEvent.newBuilder()
                .setSessionId(session)
                .setEventId(id)
                .setTimestampMs(5L)
                .setPayload(payload)
                .setSource(new SourceCoordinates("in", 0, offset))
                .build();
    }

    @SuppressWarnings("unchecked")
    static <T> List<T> values(java.util.Collection<? extends StreamRecord<?>> records) {
        List<T> out = new ArrayList<>();
        if (records != null) {
            records.forEach(r -> out.add((T) r.getValue()));
        }
        return out;
    }

    static KeyedOneInputStreamOperatorTestHarness<String, AttributionRequest, Attribution> precise() throws Exception {
        return precise(
                new PreciseAttributionOperator(settings().engine(), settings().attribution()));
    }

    static KeyedOneInputStreamOperatorTestHarness<String, AttributionRequest, Attribution> precise(
            PreciseAttributionOperator op) throws Exception {
        return new KeyedOneInputStreamOperatorTestHarness<>(
                new KeyedProcessOperator<>(op), AttributionRequest::getSessionId, Types.STRING);
    }

    /** Advances processing time one ms at a time until an output appears (or {@code maxCalls} calls). */
    static int runUntilOutput(
            KeyedOneInputStreamOperatorTestHarness<String, AttributionRequest, Attribution> h, int maxCalls)
            throws Exception {
        int calls = 0;
        while (h.extractOutputValues().isEmpty() && calls < maxCalls) {
            h.setProcessingTime(h.getProcessingTime() + 1);
            calls++;
        }
        return calls;
    }

    @Test
    void theSlicedSearchGivesOneRecordAlsoAcrossASnapshotAndLeavesNothingBehind() throws Exception {
        AttributionRequest r = request();
        Attribution whole;
        int calls;
        try (var h = precise()) {
            h.open();
            h.processElement(new StreamRecord<>(r));
            calls = runUntilOutput(h, 10_000);
            assertThat(h.extractOutputValues()).hasSize(1);
            whole = h.extractOutputValues().get(0);
            assertThat(h.numKeyedStateEntries()).as("state left behind").isZero();
            assertThat(h.numProcessingTimeTimers()).as("timers left behind").isZero();
        }
        assertThat(calls).as("slices of 1 ms: several calls").isGreaterThan(2);
        assertThat(whole.getMethod()).isEqualTo(AttributionMethod.PRECISE);
        assertThat(whole.getQueryId()).isEqualTo("q1");
        assertThat(whole.getSessionId()).isEqualTo("s");
        assertThat(whole.getSegments()).isNotEmpty().hasSizeLessThanOrEqualTo(3);
        for (int i = 0; i < whole.getSegments().size(); i++) {
            assertThat(whole.getSegments().get(i).getRank()).isEqualTo(i + 1);
        }

        OperatorSubtaskState mid;
        try (var h = precise()) {
            h.open();
            h.processElement(new StreamRecord<>(r));
            for (int i = 0; i < calls / 2; i++) {
                h.setProcessingTime(h.getProcessingTime() + 1);
            }
            assertThat(h.extractOutputValues()).as("not finished half-way").isEmpty();
            mid = h.snapshot(1, h.getProcessingTime());
        }
        try (var h = precise()) {
            h.initializeState(mid);
            h.open();
            runUntilOutput(h, 10_000);
            assertThat(h.extractOutputValues()).singleElement().satisfies(a -> {
                assertThat(a.getSegments())
                        .extracting(s -> s.getEventId() + ":" + s.getCharStart() + "-" + s.getCharEnd())
                        .containsExactlyElementsOf(whole.getSegments().stream()
                                .map(s -> s.getEventId() + ":" + s.getCharStart() + "-" + s.getCharEnd())
                                .toList());
                assertThat(a.getSegments())
                        .extracting(s -> s.getScore())
                        .containsExactlyElementsOf(whole.getSegments().stream()
                                .map(s -> s.getScore())
                                .toList());
            });
            assertThat(h.numKeyedStateEntries()).isZero();
        }
    }

    /**
     * With at most one pending request, two more requests arriving while the first is searched are answered at once
     * as SKIPPED_BACKLOG (once each, counted), the first completes, nothing is left behind, and once the queue is
     * free again a new request is queued and answered normally.
     */
    @Test
    void requestsBeyondMaxPendingAreAnsweredAsSkippedOnceEach() throws Exception {
        AttributionRequest r1 = request();
        AttributionRequest r2 =
                AttributionRequest.newBuilder(r1).setQueryId("q2").build();
        AttributionRequest r3 =
                AttributionRequest.newBuilder(r1).setQueryId("q3").build();
        SessionSettings one =
                settings().withAttribution(settings().attribution().withMaxPending(1));
        PreciseAttributionOperator op = new PreciseAttributionOperator(one.engine(), one.attribution());
        try (var h = precise(op)) {
            h.open();
            h.processElement(new StreamRecord<>(r1));
            h.processElement(new StreamRecord<>(r2));
            h.processElement(new StreamRecord<>(r3));
            assertThat(h.extractOutputValues())
                    .as("the overflow is answered before any search ran")
                    .extracting(
                            Attribution::getQueryId,
                            Attribution::getMethod,
                            Attribution::getStatus,
                            a -> a.getSegments().size())
                    .containsExactly(
                            tuple("q2", AttributionMethod.PRECISE, AttributionStatus.SKIPPED_BACKLOG, 0),
                            tuple("q3", AttributionMethod.PRECISE, AttributionStatus.SKIPPED_BACKLOG, 0));
            assertThat(op.skippedBacklog()).isEqualTo(2);

            int calls = 0;
            while (h.extractOutputValues().size() < 3 && calls++ < 10_000) {
                h.setProcessingTime(h.getProcessingTime() + 1);
            }
            for (int i = 0; i < 20; i++) { // more time changes nothing
                h.setProcessingTime(h.getProcessingTime() + 1);
            }
            List<Attribution> out = h.extractOutputValues();
            assertThat(out).extracting(Attribution::getQueryId).containsExactly("q2", "q3", "q1");
            assertThat(out.get(2).getStatus()).isEqualTo(AttributionStatus.COMPLETE);
            assertThat(out.get(2).getSegments()).isNotEmpty();
            assertThat(h.numKeyedStateEntries()).as("state left behind").isZero();
            assertThat(h.numProcessingTimeTimers()).as("timers left behind").isZero();

            // the queue is free again: the next request is queued, not skipped (an empty answer completes at once)
            h.processElement(new StreamRecord<>(AttributionRequest.newBuilder(r1)
                    .setQueryId("q4")
                    .setAnswerTokens(List.of())
                    .build()));
            h.setProcessingTime(h.getProcessingTime() + 1);
            assertThat(h.extractOutputValues()).hasSize(4).last().satisfies(a -> {
                assertThat(a.getQueryId()).isEqualTo("q4");
                assertThat(a.getStatus()).isEqualTo(AttributionStatus.COMPLETE);
            });
            assertThat(op.skippedBacklog()).isEqualTo(2);
            assertThat(h.numKeyedStateEntries()).isZero();
        }
    }
}
