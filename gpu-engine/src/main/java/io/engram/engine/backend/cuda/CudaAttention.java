package io.engram.engine.backend.cuda;

import io.engram.engine.backend.Backend.AttentionShape;
import io.engram.engine.backend.BackendException;
import io.engram.engine.backend.RopeStyle;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.backend.cuda.GpuMemoryBudget.Use;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvSpan;
import java.util.IdentityHashMap;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.JCudaDriver;

/**
 * {@link CudaBackend}'s attention op (kernels in {@code src/main/cuda/engram_kernels.cu}): the plan's spans as segment
 * tables, the queries rotated, split-K attention over tiles of keys and its combine, and, for a plan's observer, the
 * attention mass per key. RoPE tables are uploaded once per {@link RopeTable}. Called under the backend's current
 * context, one thread at a time.
 */
final class CudaAttention {
    /** Keys per tile of the attention kernel (its block size). */
    static final int TILE = 128;
    /** Query heads per KV head the kernel serves. */
    static final int MAX_GROUP = 16;

    /** Launches a kernel on the backend's stream (CudaBackend.launch). */
    interface Launcher {
        void launch(String kernel, int gx, int gy, int gz, int block, int sharedBytes, Object... args);
    }

    /** RoPE tables of one {@link RopeTable} on the device. */
    private record DeviceRope(
            DeviceMemory.Slot cos, DeviceMemory.Slot sin, DeviceMemory.Slot invFreq, int cached, int style) {}

    private final CudaDevice device;
    private final DeviceMemory memory;
    private final Staging staging;
    private final Launcher launcher;
    private final Map<RopeTable, DeviceRope> ropes = new IdentityHashMap<>();
    private final AttentionSegments segmentTables = new AttentionSegments();

    CudaAttention(CudaDevice device, DeviceMemory memory, Staging staging, Launcher launcher) {
        this.device = device;
        this.memory = memory;
        this.staging = staging;
        this.launcher = launcher;
    }

    /** Refuses shapes the kernels do not serve. */
    void check(AttentionShape shape) {
        int heads = shape.heads();
        int kvHeads = shape.kvHeads();
        int hd = shape.headDim();
        int group = heads / kvHeads;
        if (heads % kvHeads != 0 || group > MAX_GROUP || hd % 2 != 0 || hd > 512) {
            throw new BackendException("attention: %d query heads over %d KV heads of dim %d are not supported on CUDA "
                            .formatted(heads, kvHeads, hd)
                    + "(at most %d query heads per KV head, even head dim <= 512)".formatted(MAX_GROUP));
        }
    }

    /**
     * Attention of {@code n} queries at device address {@code q} over the plan's spans into {@code out} (both n x qDim
     * floats); the plan's observer, if any, gets each key's attention mass.
     */
    void run(
            int layer,
            long q,
            int n,
            long[] qSeq,
            AttentionPlan plan,
            RopeTable rope,
            AttentionShape shape,
            float scale,
            long out) {
        int heads = shape.heads();
        int kvHeads = shape.kvHeads();
        int hd = shape.headDim();
        int group = heads / kvHeads;
        try {
            AttentionSegments.Table segs = segmentTables.build(layer, plan, kvHeads, shape.kvDim(), memory);
            long minSeq = Long.MAX_VALUE;
            for (long s : qSeq) {
                minSeq = Math.min(minSeq, s);
            }
            for (int g = 0; g < kvHeads; g++) {
                if (segs.totals()[g] == 0 || segs.minSeq()[g] > minSeq) {
                    throw new BackendException("attention: query seq %d of layer %d sees no key of KV head %d"
                            .formatted(minSeq, layer, g));
                }
            }
            int smemFloats = 2 * group * hd + TILE * group + 3 * group + (group & 1);
            int smem = smemFloats * 4 + TILE * 8;
            if (smem > 48 * 1024) {
                throw new BackendException(
                        "attention: %d query heads per KV head of dim %d need %d bytes of shared memory, "
                                        .formatted(group, hd, smem)
                                + "more than the 48 KiB the kernel is launched with");
            }
            DeviceRope r = rope(rope);
            int maxTotal = 0;
            for (int t : segs.totals()) {
                maxTotal = Math.max(maxTotal, t);
            }
            // splits: enough blocks to fill the device twice over, at least a tile of keys each
            int tiles = ceilDiv(maxTotal, TILE);
            int splits = Math.max(1, Math.min(tiles, ceilDiv(2 * device.multiprocessors(), n * kvHeads)));
            int keysPerSplit = ceilDiv(tiles, splits) * TILE;
            splits = ceilDiv(maxTotal, keysPerSplit);

            staging.reserve(segs.table().limit() + 4 * (3 * kvHeads + 3 * n));
            long segAddr = staging.put(segs.table());
            long loAddr = staging.putInts(segs.lo());
            long hiAddr = staging.putInts(segs.hi());
            long totAddr = staging.putInts(segs.totals());
            long seqAddr = staging.putLongs(qSeq);
            long posAddr = staging.putInts(plan.queryPositions());
            DeviceMemory.Slot qr =
                    memory.allocate(Use.ACTIVATIONS, (long) n * shape.qDim() * 4, null, "rotated queries");
            long parts = (long) n * heads * splits;
            DeviceMemory.Slot po = memory.allocate(Use.WORKSPACE, parts * hd * 4, null, "attention partials");
            DeviceMemory.Slot pm = memory.allocate(Use.WORKSPACE, parts * 4, null, "attention partials");
            DeviceMemory.Slot pl = memory.allocate(Use.WORKSPACE, parts * 4, null, "attention partials");
            DeviceMemory.Slot lse = memory.allocate(Use.WORKSPACE, (long) n * heads * 4, null, "attention lse");
            try {
                launcher.launch(
                        "engram_rope_f32",
                        n,
                        1,
                        1,
                        128,
                        0,
                        q,
                        posAddr,
                        heads,
                        hd,
                        r.cos.address,
                        r.sin.address,
                        r.invFreq.address,
                        r.cached,
                        r.style,
                        qr.address);
                launcher.launch(
                        "engram_attention_f32",
                        splits,
                        n,
                        kvHeads,
                        TILE,
                        smem,
                        qr.address,
                        seqAddr,
                        segAddr,
                        loAddr,
                        hiAddr,
                        totAddr,
                        heads,
                        kvHeads,
                        hd,
                        scale,
                        keysPerSplit,
                        r.cos.address,
                        r.sin.address,
                        r.invFreq.address,
                        r.cached,
                        r.style,
                        po.address,
                        pm.address,
                        pl.address);
                launcher.launch(
                        "engram_attention_combine_f32",
                        n * heads,
                        1,
                        1,
                        Math.min(256, ceilDiv(hd, 32) * 32),
                        0,
                        po.address,
                        pm.address,
                        pl.address,
                        heads,
                        hd,
                        splits,
                        out,
                        lse.address);
                if (plan.observer() != null) {
                    observe(
                            layer, plan, segs, maxTotal, n, shape, scale, r, qr, seqAddr, segAddr, loAddr, hiAddr,
                            totAddr, lse);
                }
            } finally {
                memory.free(qr);
                memory.free(po);
                memory.free(pm);
                memory.free(pl);
                memory.free(lse);
            }
        } finally {
            memory.unpinAll();
        }
    }

    /** Attention mass per key for the plan's observer, in the CPU backend's layout (span by span per KV head). */
    private void observe(
            int layer,
            AttentionPlan plan,
            AttentionSegments.Table segs,
            int maxTotal,
            int n,
            AttentionShape shape,
            float scale,
            DeviceRope r,
            DeviceMemory.Slot qr,
            long seqAddr,
            long segAddr,
            long loAddr,
            long hiAddr,
            long totAddr,
            DeviceMemory.Slot lse) {
        int kvHeads = shape.kvHeads();
        DeviceMemory.Slot mass = memory.allocate(Use.WORKSPACE, (long) kvHeads * maxTotal * 4, null, "attention mass");
        try {
            launcher.launch(
                    "engram_attention_mass_f32",
                    ceilDiv(maxTotal, 128),
                    kvHeads,
                    1,
                    128,
                    0,
                    qr.address,
                    seqAddr,
                    n,
                    segAddr,
                    loAddr,
                    hiAddr,
                    totAddr,
                    shape.heads(),
                    kvHeads,
                    shape.headDim(),
                    scale,
                    r.cos.address,
                    r.sin.address,
                    r.invFreq.address,
                    r.cached,
                    r.style,
                    lse.address,
                    maxTotal,
                    mass.address);
            float[] host = new float[kvHeads * maxTotal];
            JCudaDriver.cuMemcpyDtoH(Pointer.to(host), DevicePointers.at(mass.address), host.length * 4L);
            staging.reset();
            for (int g = 0; g < kvHeads; g++) {
                float[] m = java.util.Arrays.copyOfRange(host, g * maxTotal, g * maxTotal + segs.totals()[g]);
                int off = 0;
                for (KvSpan s : plan.spans(g)) {
                    plan.observer().observe(layer, g, s, m, off);
                    off += s.length();
                }
            }
        } finally {
            memory.free(mass);
        }
    }

    private DeviceRope rope(RopeTable table) {
        DeviceRope r = ropes.get(table);
        if (r != null) {
            return r;
        }
        int half = table.headDim() / 2;
        int cached = table.cachedPositions();
        float[] cos = new float[cached * half];
        float[] sin = new float[cached * half];
        float[] cs = new float[half];
        float[] sn = new float[half];
        for (int p = 0; p < cached; p++) {
            table.angles(p, cs, sn);
            System.arraycopy(cs, 0, cos, p * half, half);
            System.arraycopy(sn, 0, sin, p * half, half);
        }
        double[] inv = table.inverseFrequencies();
        float[] invF = new float[half];
        for (int i = 0; i < half; i++) {
            invF[i] = (float) inv[i];
        }
        r = new DeviceRope(
                upload(cos, "RoPE cosines"),
                upload(sin, "RoPE sines"),
                upload(invF, "RoPE frequencies"),
                cached,
                table.style() == RopeStyle.HALF ? 0 : 1);
        ropes.put(table, r);
        return r;
    }

    private DeviceMemory.Slot upload(float[] v, String what) {
        DeviceMemory.Slot s = memory.allocate(Use.WORKSPACE, v.length * 4L, null, what);
        JCudaDriver.cuMemcpyHtoD(DevicePointers.at(s.address), Pointer.to(v), v.length * 4L);
        return s;
    }

    /** Forgets the RoPE tables (their device memory goes with the backend's {@link DeviceMemory}). */
    void close() {
        ropes.clear();
    }

    private static int ceilDiv(long a, long b) {
        return Math.toIntExact((a + b - 1) / b);
    }
}
