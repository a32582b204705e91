package io.engram.operators.session;

import static io.engram.operators.session.SessionFailureIsolationTest.FACTS;
import static io.engram.operators.session.SessionMemoryOperatorTest.ev;
import static io.engram.operators.session.SessionMemoryOperatorTest.harness;
import static io.engram.operators.session.SessionMemoryOperatorTest.query;
import static io.engram.operators.session.SessionMemoryOperatorTest.text;
import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.Answer;
import io.engram.schemas.DropCause;
import io.engram.schemas.DroppedUnit;
import io.engram.schemas.Summary;
import io.engram.schemas.SummaryKind;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A session idle for {@code engram.state.idle-ttl} has its KV memory summarized, then dropped block by block with an
 * IDLE trail; other sessions keep theirs; the idle timer survives a snapshot; a later event starts afresh, with block ids
 * that never repeat a dropped block's.
 */
class IdleSessionsTest {
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

    private static SessionSettings settings(long idleMillis) {
        SessionSettings s = SessionSettings.of(
                SessionMemoryOperatorTest.model.toString(),
                8,
                16,
                1,
                new SessionSettings.Answers(6, 4, 0),
                new SessionSettings.Batching(8, 0),
                SessionSettings.Storage.of(io.engram.state.codec.KvDType.BF16, 1L << 20));
        return s.withRetention(s.storage().retention().withIdle(idleMillis));
    }

    private static List<DroppedUnit> dropped(
            KeyedOneInputStreamOperatorTestHarness<String, ?, Answer> h, String session) throws Exception {
        var backend = ((SessionMemoryOperator) h.getOperator()).<String>getKeyedStateBackend();
        backend.setCurrentKey(session);
        MapState<Long, DroppedUnit> m = backend.getPartitionedState(
                VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE, SessionStateDescriptors.DROPPED_UNITS);
        List<DroppedUnit> out = new ArrayList<>();
        m.values().forEach(out::add);
        return out;
    }

    private static Answer last(KeyedOneInputStreamOperatorTestHarness<String, ?, Answer> h) {
        return h.extractOutputValues().getLast();
    }

    @Test
    void anIdleSessionIsSummarizedThenDroppedAndOthersKeepTheirMemory() throws Exception {
        OperatorSubtaskState snapshot;
        long tokensA;
        try (var h = harness(settings(1_000))) {
            h.open();
            h.setProcessingTime(0);
            h.processElement(ev("a", "a0", text(FACTS)));
            h.processElement(ev("a", "qa0", query("qa0")));
            tokensA = last(h).getMemory().getTokens();
            assertThat(last(h).getMemory().getBlocks()).isPositive();
            h.setProcessingTime(600);
            h.processElement(ev("b", "b0", text(FACTS)));
            h.setProcessingTime(900); // a's first check is due at 1,000: nothing has gone yet
            assertThat(h.getSideOutput(SessionMemoryOperator.SUMMARIES)).isNull();
            snapshot = h.snapshot(1L, 1L);
        }
        try (var h = harness(settings(1_000))) {
            h.setProcessingTime(900);
            h.initializeState(snapshot);
            h.open();
            h.setProcessingTime(1_000); // the restored timer fires: a has been idle for 1,000 ms, b for 400
            List<Summary> sums = h.getSideOutput(SessionMemoryOperator.SUMMARIES).stream()
                    .map(StreamRecord::getValue)
                    .toList();
            assertThat(sums).singleElement().satisfies(s -> {
                assertThat(s.getSessionId()).isEqualTo("a");
                assertThat(s.getKind()).isEqualTo(SummaryKind.EPISODE);
                assertThat(s.getFirstToken()).isZero();
                assertThat(s.getLastToken()).isEqualTo(tokensA - 1);
                assertThat(s.getCreatedAtMs()).isEqualTo(1_000);
            });
            List<DroppedUnit> gone = dropped(h, "a");
            assertThat(gone).isNotEmpty().allSatisfy(d -> {
                assertThat(d.getCause()).isEqualTo(DropCause.IDLE);
                assertThat(d.getFirstEvent()).isZero();
                assertThat(d.getSummarizedSeq()).isEqualTo(tokensA);
            });
            assertThat(gone.stream().mapToLong(DroppedUnit::getTokens).sum()).isEqualTo(tokensA);
            assertThat(dropped(h, "b")).isEmpty();

            h.processElement(ev("b", "qb", query("qb")));
            assertThat(last(h).getMemory().getTokens()).as("b keeps its memory").isEqualTo(tokensA);
            h.processElement(ev("a", "qa1", query("qa1")));
            assertThat(last(h).getMemory().getBlocks())
                    .as("a's KV memory is gone")
                    .isZero();

            h.processElement(ev("a", "a1", text("The ferry leaves at nine.")));
            h.processElement(ev("a", "qa2", query("qa2")));
            assertThat(last(h).getQueryId()).isEqualTo("qa2");
            assertThat(last(h).getMemory().getBlocks())
                    .as("a later event starts afresh")
                    .isPositive();
            assertThat(h.getSideOutput(SessionMemoryOperator.DEAD_LETTERS)).isNull();

            h.setProcessingTime(1_600); // b's first check (set at 600) fires, but b asked at 1,000: not idle yet
            assertThat(dropped(h, "b")).isEmpty();
            h.setProcessingTime(2_000); // b's second check: idle since 1,000; a's too (its events came at 1,000)
            assertThat(dropped(h, "b")).isNotEmpty();
            List<DroppedUnit> all = dropped(h, "a");
            assertThat(all)
                    .as("a's new blocks went too, with ids no dropped block had")
                    .hasSizeGreaterThan(gone.size());
            assertThat(all.stream().map(DroppedUnit::getBlockId).distinct().count())
                    .isEqualTo(all.size());
        }
    }

    @Test
    void withoutAnIdleSpanNothingIsEverDropped() throws Exception {
        try (var h = harness(settings(0))) {
            h.open();
            h.setProcessingTime(0);
            h.processElement(ev("a", "a0", text(FACTS)));
            h.setProcessingTime(Long.MAX_VALUE / 2);
            assertThat(dropped(h, "a")).isEmpty();
            h.processElement(ev("a", "qa", query("qa")));
            assertThat(last(h).getMemory().getBlocks()).isPositive();
        }
    }
}
