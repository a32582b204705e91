package io.engram.state.session;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.memory.PolicySnapshot;
import io.engram.schemas.MemoryUnit;
import io.engram.schemas.PolicyState;
import io.engram.state.codec.CorruptMemoryException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A policy snapshot survives its trip through the Avro records that store it, bit for bit; damaged records are refused. */
class PolicyStateCodecTest {

    static PolicySnapshot snapshot() {
        float[][] repr = {{1.5f, -2f, Float.MIN_VALUE}, {0f, 3.25f, -0f}};
        List<PolicySnapshot.Unit> units = List.of(
                new PolicySnapshot.Unit(4, 36, true, repr, new int[] {2, 0}),
                new PolicySnapshot.Unit(36, 52, false, repr, null));
        return new PolicySnapshot(
                "emllm",
                52,
                2,
                0,
                units,
                new long[] {60, 71},
                new long[] {3, 9},
                new float[] {0.5f, 1.25f},
                true,
                List.of(new PolicySnapshot.BlockMass(48, new float[] {0.1f, 0.2f, 0.7f})),
                new long[][] {{4}, {}, {4, 36}});
    }

    @Test
    void aSnapshotReadsBackAsItWasWritten() {
        PolicySnapshot s = snapshot();
        PolicyState ps = PolicyStateCodec.state(s, 80);
        List<MemoryUnit> records = new ArrayList<>();
        for (PolicySnapshot.Unit u : s.units()) {
            records.add(PolicyStateCodec.unit(u));
        }
        PolicySnapshot back = PolicyStateCodec.snapshot(ps, records);
        assertThat(ps.getNextSeq()).isEqualTo(80);
        assertThat(back.policy()).isEqualTo("emllm");
        assertThat(back.packedEnd()).isEqualTo(52);
        assertThat(back.unitCount()).isEqualTo(2);
        assertThat(back.boundaries()).containsExactly(60, 71);
        assertThat(back.retained()).containsExactly(3, 9);
        assertThat(back.retainedScores()).containsExactly(0.5f, 1.25f);
        assertThat(back.evicted()).isTrue();
        assertThat(back.windowMass()).hasSize(1);
        assertThat(back.windowMass().get(0).mass()).containsExactly(0.1f, 0.2f, 0.7f);
        assertThat(back.contiguity()).isDeepEqualTo(new long[][] {{4}, {}, {4, 36}});
        for (int i = 0; i < 2; i++) {
            PolicySnapshot.Unit a = s.units().get(i);
            PolicySnapshot.Unit b = back.units().get(i);
            assertThat(b.start()).isEqualTo(a.start());
            assertThat(b.end()).isEqualTo(a.end());
            assertThat(b.episode()).isEqualTo(a.episode());
            assertThat(b.lists()).isEqualTo(a.lists());
            for (int l = 0; l < a.repr().length; l++) {
                assertThat(Arrays.equals(b.repr()[l], a.repr()[l]))
                        .as("layer %d keys, bit for bit", l)
                        .isTrue();
            }
        }
    }

    @Test
    void carriedLogitsReadBackBitForBitAndAStateWithoutThemCarriesNone() {
        float[] carried = {1.5f, -2.25f, 0f, 1024f, -0.0078125f
        }; // values a bfloat16 holds exactly, as KvCache carries them
        PolicyState ps = PolicyStateCodec.state(snapshot(), 80, carried);
        assertThat(ps.getCarriedLogits().remaining()).isEqualTo(10);
        assertThat(PolicyStateCodec.carriedLogits(ps)).containsExactly(carried);
        assertThat(PolicyStateCodec.carriedLogits(PolicyStateCodec.state(snapshot(), 80)))
                .isNull();
        ps.setCarriedLogits(java.nio.ByteBuffer.wrap(new byte[3]));
        assertThatThrownBy(() -> PolicyStateCodec.carriedLogits(ps))
                .isInstanceOf(CorruptMemoryException.class)
                .hasMessageContaining("not whole bfloat16 values");
    }

    @Test
    void aMissingUnitOrKeysOfTheWrongSizeAreCorruptMemory() {
        PolicySnapshot s = snapshot();
        PolicyState ps = PolicyStateCodec.state(s, 80);
        List<MemoryUnit> one = new ArrayList<>();
        one.add(PolicyStateCodec.unit(s.units().get(0)));
        one.add(null);
        assertThatThrownBy(() -> PolicyStateCodec.snapshot(ps, one))
                .isInstanceOf(CorruptMemoryException.class)
                .hasMessageContaining("lists 2 units but 1 are stored");
        MemoryUnit bad = PolicyStateCodec.unit(s.units().get(0));
        bad.setKvDim(4);
        assertThatThrownBy(() -> PolicyStateCodec.unit(bad))
                .isInstanceOf(CorruptMemoryException.class)
                .hasMessageContaining("bytes of keys");
    }
}
