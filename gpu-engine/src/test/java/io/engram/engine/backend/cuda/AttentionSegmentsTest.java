package io.engram.engine.backend.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cuda.GpuMemoryBudget.Use;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.tensor.Buf;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** How attention plans become the kernels' segment tables: runs, positions, causality data and pinning (no GPU needed). */
class AttentionSegmentsTest {
    static final int KV_DIM = 16;
    static final int CAP = 8;
    final DeviceMemoryTest.ArrayDevice dev = new DeviceMemoryTest.ArrayDevice();
    final DeviceMemory memory = new DeviceMemory(dev, new GpuMemoryBudget(1 << 20, "test"));

    record Seg(long k, long v, long seq0, int len, int base, int step, int keyStart) {}

    static List<Seg> segs(AttentionSegments.Table t, int lo, int hi) {
        ByteBuffer b = t.table();
        List<Seg> out = new ArrayList<>();
        for (int i = lo; i < hi; i++) {
            int o = i * AttentionSegments.SEGMENT_BYTES;
            out.add(new Seg(
                    b.getLong(o),
                    b.getLong(o + 8),
                    b.getLong(o + 16),
                    b.getInt(o + 24),
                    b.getInt(o + 28),
                    b.getInt(o + 32),
                    b.getInt(o + 36)));
        }
        return out;
    }

    KvBlock block(long id, long firstSeq, int[] positions) {
        Buf[] k = {kv()};
        Buf[] v = {kv()};
        KvBlock b = new KvBlock(id, firstSeq, CAP, k, v);
        b.append(new int[positions.length], positions, null, 0, positions.length);
        return b;
    }

    DeviceBuf kv() {
        return new DeviceBuf(CAP * KV_DIM, memory.allocate(Use.KV, CAP * KV_DIM * 4L, null, "kv"));
    }

    static long addr(Buf b) {
        return ((DeviceBuf) b).slot.address;
    }

    @Test
    void spansBecomeRunsWithTheirPositionsAndHeadsWithOneListShareThem() {
        KvBlock a = block(0, 0, new int[] {10, 11, 12, 20, 21, 22, 23, 24}); // stored positions break after slot 2
        KvBlock b = block(1, 8, new int[] {30, 31, 32, 33, 34, 35, 36, 37});
        KvBlock c = block(2, 16, new int[] {40, 41, 42});
        List<KvSpan> all = List.of(
                KvSpan.stored(a),
                new KvSpan(b, 2, 6, KvSpan.Positions.CONTIGUOUS, 5),
                new KvSpan(c, 0, 3, KvSpan.Positions.FIXED, 99));
        List<KvSpan> recent = List.of(KvSpan.stored(c));
        AttentionPlan plan = new AttentionPlan(List.of(all, recent, all), new int[] {50});
        AttentionSegments.Table t = new AttentionSegments().build(0, plan, 3, KV_DIM, memory);

        assertThat(t.lo()[2])
                .as("KV head 2 has the same list as head 0: shared segments")
                .isEqualTo(t.lo()[0]);
        assertThat(t.hi()[2]).isEqualTo(t.hi()[0]);
        assertThat(t.totals()).containsExactly(8 + 4 + 3, 3, 8 + 4 + 3);
        assertThat(t.minSeq()).containsExactly(0, 16, 0);
        long rowBytes = KV_DIM * 4L;
        assertThat(segs(t, t.lo()[0], t.hi()[0]))
                .containsExactly(
                        new Seg(addr(a.keys(0)), addr(a.values(0)), 0, 3, 10, 1, 0),
                        new Seg(addr(a.keys(0)) + 3 * rowBytes, addr(a.values(0)) + 3 * rowBytes, 3, 5, 20, 1, 3),
                        new Seg(addr(b.keys(0)) + 2 * rowBytes, addr(b.values(0)) + 2 * rowBytes, 10, 4, 5, 1, 8),
                        new Seg(addr(c.keys(0)), addr(c.values(0)), 16, 3, 99, 0, 12));
        assertThat(segs(t, t.lo()[1], t.hi()[1]))
                .containsExactly(new Seg(addr(c.keys(0)), addr(c.values(0)), 16, 3, 40, 1, 0));
        assertThat(t.table().limit()).isEqualTo(5 * AttentionSegments.SEGMENT_BYTES);
    }

    @Test
    void aGrowingBlockStaysOneRunAndARewrittenOneIsScannedAgain() {
        KvBlock a = block(0, 0, new int[] {0, 1, 2});
        AttentionSegments s = new AttentionSegments();
        AttentionPlan p1 = AttentionPlan.uniform(1, List.of(KvSpan.stored(a)), new int[] {3});
        assertThat(segs(s.build(0, p1, 1, KV_DIM, memory), 0, 1))
                .extracting(Seg::len)
                .containsExactly(3);
        a.append(new int[2], new int[] {3, 4}, null, 0, 2);
        AttentionPlan p2 = AttentionPlan.uniform(1, List.of(KvSpan.stored(a)), new int[] {5});
        assertThat(segs(s.build(0, p2, 1, KV_DIM, memory), 0, 1))
                .extracting(Seg::len)
                .containsExactly(5);
        a.restore(
                4, new int[4], new int[] {0, 1, 7, 8}, new long[] {-1, -1, -1, -1}); // a new generation, positions jump
        AttentionPlan p3 = AttentionPlan.uniform(1, List.of(KvSpan.stored(a)), new int[] {9});
        AttentionSegments.Table t = s.build(0, p3, 1, KV_DIM, memory);
        assertThat(segs(t, t.lo()[0], t.hi()[0]))
                .extracting(Seg::len, Seg::base)
                .containsExactly(org.assertj.core.groups.Tuple.tuple(2, 0), org.assertj.core.groups.Tuple.tuple(2, 7));
    }

    @Test
    void everyBlockTheStepReadsIsPinnedUntilTheStepEnds() {
        KvBlock a = block(0, 0, new int[] {0, 1});
        new AttentionSegments()
                .build(0, AttentionPlan.uniform(1, List.of(KvSpan.stored(a)), new int[] {2}), 1, KV_DIM, memory);
        DeviceMemory.Slot keys = ((DeviceBuf) a.keys(0)).slot;
        assertThat(keys.pins).isPositive();
        memory.unpinAll();
        assertThat(keys.pins).isZero();
    }
}
