package io.engram.engine.backend.cuda;

import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvSpan;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * Turns an {@link AttentionPlan} into the segment table {@code engram_attention_f32} reads: per KV head, runs of
 * block slots with their device addresses, sequence indices and RoPE positions as {@code base + step * j}. Spans at
 * stored positions split where the stored positions stop running on by one (rare: after a restore), which a cache
 * per block finds without rescanning filled slots. KV heads with the same span list share their segments. Not
 * thread-safe: one per backend.
 */
final class AttentionSegments {
    static final int SEGMENT_BYTES = 40;

    /** How far a block's stored positions run on by one from slot 0 (most blocks: all of it). */
    private static final class Contiguity {
        final int generation;
        int checked;
        int prefix;

        Contiguity(int generation) {
            this.generation = generation;
        }
    }

    private final Map<KvBlock, Contiguity> contiguity = new WeakHashMap<>();

    /**
     * The segment table of one attention call and each KV head's range of it.
     *
     * @param table 40-byte segments, little-endian, as the kernels' {@code struct Segment}
     * @param lo first segment of each KV head
     * @param hi end of each KV head's segments
     * @param totals keys of each KV head
     * @param minSeq the smallest sequence index each KV head sees
     */
    record Table(ByteBuffer table, int[] lo, int[] hi, int[] totals, long[] minSeq) {}

    /**
     * Flattens {@code plan}'s spans of {@code layer} into segments, pinning every block they read in {@code memory}
     * (resident, not evictable until {@link DeviceMemory#unpinAll}).
     */
    Table build(int layer, AttentionPlan plan, int kvHeads, int kvDim, DeviceMemory memory) {
        int[] lo = new int[kvHeads];
        int[] hi = new int[kvHeads];
        int[] totals = new int[kvHeads];
        long[] minSeq = new long[kvHeads];
        Map<List<KvSpan>, Integer> seen = new IdentityHashMap<>(); // heads with the same span list share segments
        int count = 0;
        for (int g = 0; g < kvHeads; g++) {
            count += seen.containsKey(plan.spans(g)) ? 0 : plan.spans(g).size() + 4;
            seen.putIfAbsent(plan.spans(g), g);
        }
        seen.clear();
        ByteBuffer t = ByteBuffer.allocate(count * SEGMENT_BYTES * 2).order(ByteOrder.LITTLE_ENDIAN);
        int segs = 0;
        for (int g = 0; g < kvHeads; g++) {
            List<KvSpan> spans = plan.spans(g);
            Integer first = seen.get(spans);
            if (first != null) {
                lo[g] = lo[first];
                hi[g] = hi[first];
                totals[g] = totals[first];
                minSeq[g] = minSeq[first];
                continue;
            }
            seen.put(spans, g);
            lo[g] = segs;
            int key = 0;
            long min = Long.MAX_VALUE;
            for (KvSpan s : spans) {
                if (s.length() == 0) {
                    continue;
                }
                KvBlock b = s.block();
                DeviceBuf kb = DeviceBuf.of(b.keys(layer));
                DeviceBuf vb = DeviceBuf.of(b.values(layer));
                memory.pin(kb.slot, "keys of " + b);
                memory.pin(vb.slot, "values of " + b);
                min = Math.min(min, b.seq(s.from()));
                int from = s.from();
                while (from < s.to()) {
                    int to;
                    int base;
                    int step;
                    switch (s.positions()) {
                        case STORED -> {
                            to = from + 1;
                            if (s.to() <= contiguousPrefix(b)) {
                                to = s.to();
                            } else {
                                while (to < s.to() && b.position(to) == b.position(to - 1) + 1) {
                                    to++;
                                }
                            }
                            base = b.position(from);
                            step = 1;
                        }
                        case CONTIGUOUS -> {
                            to = s.to();
                            base = s.positionOf(from);
                            step = 1;
                        }
                        case FIXED -> {
                            to = s.to();
                            base = s.base();
                            step = 0;
                        }
                        default -> throw new IllegalStateException();
                    }
                    if ((segs + 1) * SEGMENT_BYTES > t.capacity()) {
                        ByteBuffer bigger =
                                ByteBuffer.allocate(t.capacity() * 2).order(ByteOrder.LITTLE_ENDIAN);
                        bigger.put(0, t, 0, segs * SEGMENT_BYTES);
                        t = bigger;
                    }
                    int o = segs * SEGMENT_BYTES;
                    t.putLong(o, kb.slot.address + (long) from * kvDim * 4);
                    t.putLong(o + 8, vb.slot.address + (long) from * kvDim * 4);
                    t.putLong(o + 16, b.seq(from));
                    t.putInt(o + 24, to - from);
                    t.putInt(o + 28, base);
                    t.putInt(o + 32, step);
                    t.putInt(o + 36, key);
                    key += to - from;
                    segs++;
                    from = to;
                }
            }
            hi[g] = segs;
            totals[g] = key;
            minSeq[g] = min;
        }
        t.limit(segs * SEGMENT_BYTES);
        return new Table(t, lo, hi, totals, minSeq);
    }

    /** Slots {@code [0, n)} of {@code b} whose stored positions run on by one. Blocks only grow between generations. */
    private int contiguousPrefix(KvBlock b) {
        Contiguity c = contiguity.get(b);
        if (c == null || c.generation != b.generation()) {
            c = new Contiguity(b.generation());
            contiguity.put(b, c);
        }
        int len = b.length();
        if (c.prefix == c.checked && len > c.checked) {
            int j = Math.max(1, c.checked);
            while (j < len && b.position(j) == b.position(j - 1) + 1) {
                j++;
            }
            c.prefix = j >= len ? len : j;
            c.checked = len;
        }
        return Math.min(c.prefix, len);
    }
}
