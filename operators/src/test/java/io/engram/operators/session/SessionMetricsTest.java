package io.engram.operators.session;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.schemas.Answer;
import io.engram.schemas.ControlAction;
import io.engram.schemas.ControlEvent;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EngramSchemas;
import io.engram.state.codec.KvDType;
import io.engram.state.flink.FlinkMemoryStore;
import java.nio.file.Path;
import java.util.Map;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.runtime.jobgraph.OperatorID;
import org.apache.flink.runtime.metrics.groups.InternalOperatorMetricGroup;
import org.apache.flink.runtime.metrics.util.InterceptingOperatorMetricGroup;
import org.apache.flink.runtime.metrics.util.InterceptingTaskMetricGroup;
import org.apache.flink.runtime.operators.testutils.MockEnvironment;
import org.apache.flink.runtime.operators.testutils.MockEnvironmentBuilder;
import org.apache.flink.runtime.state.KeyedStateBackend;
import org.apache.flink.runtime.state.VoidNamespace;
import org.apache.flink.runtime.state.VoidNamespaceSerializer;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The operator's metrics, registered on its real operator metric group in the keyed test harness, move as it works. */
class SessionMetricsTest {
    @TempDir
    static Path tmp;

    static Path model;

    @BeforeAll
    static void model() {
        EngramSchemas.trustEngramClasses();
        model = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.QWEN2, DType.F32, 42);
    }

    final InterceptingOperatorMetricGroup metrics = new InterceptingOperatorMetricGroup();

    long count(String name) {
        return ((Counter) metrics.get(name)).getCount();
    }

    Object gauge(String name) {
        return ((Gauge<?>) metrics.get(name)).getValue();
    }

    /** Sum of the stored unit bytes of {@code session}, read from the keyed state backend. */
    static long storedBytes(KeyedStateBackend<String> backend, String session) throws Exception {
        backend.setCurrentKey(session);
        MapState<Long, byte[]> units = backend.getPartitionedState(
                VoidNamespace.INSTANCE, VoidNamespaceSerializer.INSTANCE, FlinkMemoryStore.UNITS);
        long n = 0;
        for (byte[] b : units.values()) {
            n += b.length;
        }
        return n;
    }

    @Test
    void countersHistogramAndGaugesMoveWithTheWork() throws Exception {
        InterceptingTaskMetricGroup task = new InterceptingTaskMetricGroup() {
            @Override
            public InternalOperatorMetricGroup getOrAddOperator(OperatorID id, String name, Map<String, String> info) {
                return metrics;
            }
        };
        SessionSettings s = SessionSettings.of(
                model.toString(),
                8,
                16,
                1,
                new SessionSettings.Answers(6, 4, 0),
                new SessionSettings.Batching(8, 0),
                SessionSettings.Storage.of(KvDType.INT8, 1L << 20));
        try (MockEnvironment env =
                        new MockEnvironmentBuilder().setMetricGroup(task).build();
                var h = new KeyedOneInputStreamOperatorTestHarness<>(
                        new SessionMemoryOperator(s), EngramEvent::getSessionId, Types.STRING, env)) {
            h.setup();
            h.open();
            assertThat(count(SessionMetrics.TOKENS_INGESTED)).isZero();
            assertThat(gauge(SessionMetrics.SESSIONS)).isEqualTo(0);
            h.processElement(SessionMemoryOperatorTest.ev(
                    "s1", "c0", SessionMemoryOperatorTest.text("The vault code is 7481.")));
            h.processElement(SessionMemoryOperatorTest.ev(
                    "s1",
                    "c1",
                    SessionMemoryOperatorTest.text(
                            "My sister lives in Porto, and the keeper counted forty gulls on the cliffs at dawn.")));
            h.processElement(SessionMemoryOperatorTest.ev("s2", "c0", SessionMemoryOperatorTest.text("Code 12.")));
            long tokens = count(SessionMetrics.TOKENS_INGESTED);
            assertThat(tokens).isPositive();
            assertThat(gauge(SessionMetrics.SESSIONS)).isEqualTo(2);
            KeyedStateBackend<String> backend = h.getOperator().getKeyedStateBackend();
            long s1 = storedBytes(backend, "s1");
            long s2 = storedBytes(backend, "s2");
            assertThat(s1).isGreaterThan(s2);
            assertThat(gauge(SessionMetrics.STATE_BYTES))
                    .as("gauge equals the stored unit bytes")
                    .isEqualTo(s1 + s2);
            assertThat(gauge(SessionMetrics.MAX_SESSION_BYTES)).isEqualTo(s1);
            assertThat((Long) gauge(SessionMetrics.UNITS)).isGreaterThanOrEqualTo(3L);
            assertThat((Long) gauge(SessionMetrics.MAX_SESSION_UNITS)).isGreaterThanOrEqualTo(2L);
            assertThat(count(SessionMetrics.MEMORY_REUSED))
                    .as("s1's second event started from the memory its first left")
                    .isEqualTo(1);
            assertThat((Double) gauge(SessionMetrics.ENGINE_TOKENS_PER_SECOND)).isPositive();

            h.processElement(SessionMemoryOperatorTest.ev("s1", "q1", SessionMemoryOperatorTest.query("q1")));
            assertThat(h.extractOutputValues()).extracting(Answer::getQueryId).containsExactly("q1");
            assertThat(count(SessionMetrics.QUERIES_ANSWERED)).isEqualTo(1);
            Histogram latency = (Histogram) metrics.get(SessionMetrics.ANSWER_LATENCY);
            assertThat(latency.getCount()).isEqualTo(1);
            assertThat(count(SessionMetrics.TOKENS_INGESTED))
                    .as("queries ingest nothing")
                    .isEqualTo(tokens);

            h.processElement(SessionMemoryOperatorTest.ev("s2", "r", new ControlEvent(ControlAction.RESET)));
            assertThat(gauge(SessionMetrics.SESSIONS)).isEqualTo(1);
            assertThat(gauge(SessionMetrics.STATE_BYTES)).isEqualTo(s1);
            assertThat(gauge(SessionMetrics.MAX_SESSION_BYTES)).isEqualTo(s1);
            assertThat(count(SessionMetrics.DEAD_LETTERS)).isZero();
            h.processElement(SessionMemoryOperatorTest.ev("s2", "q2", SessionMemoryOperatorTest.query("q2")));
            h.processElement(SessionMemoryOperatorTest.ev("s3", "blank", SessionMemoryOperatorTest.text(" ")));
            assertThat(count(SessionMetrics.DEAD_LETTERS)).isEqualTo(2);
            assertThat(count(SessionMetrics.QUERIES_ANSWERED)).isEqualTo(1);
        }
    }

    @Test
    void memoryGaugesTrackTheMostRecentlyActiveSessionsOnlySoTheirMapStaysBounded() {
        var group = new org.apache.flink.metrics.groups.UnregisteredMetricsGroup() {
            final Map<String, org.apache.flink.metrics.Gauge<?>> gauges = new java.util.HashMap<>();

            @Override
            public <T, G extends org.apache.flink.metrics.Gauge<T>> G gauge(String name, G gauge) {
                gauges.put(name, gauge);
                return gauge;
            }
        };
        SessionMetrics m = new SessionMetrics(group, KvDType.F32, 3);
        var backend = new io.engram.engine.backend.cpu.CpuBackend(1, false);
        for (int i = 1; i <= 5; i++) {
            io.engram.engine.kv.KvCache mem = new io.engram.engine.kv.KvCache(backend, 1, 4, 2);
            mem.append(new int[i * 2], new int[i * 2], new long[i * 2]); // session i holds i blocks
            m.memory("s" + i, mem);
        }
        assertThat(group.gauges.get(SessionMetrics.SESSIONS).getValue()).isEqualTo(3);
        assertThat(group.gauges.get(SessionMetrics.UNITS).getValue())
                .as("sessions 3, 4 and 5")
                .isEqualTo(12L);
        assertThat(group.gauges.get(SessionMetrics.MAX_SESSION_UNITS).getValue())
                .isEqualTo(5L);
        m.cleared("s5");
        assertThat(group.gauges.get(SessionMetrics.MAX_SESSION_UNITS).getValue())
                .isEqualTo(4L);
        assertThat(group.gauges.get(SessionMetrics.UNITS).getValue()).isEqualTo(7L);
    }
}
