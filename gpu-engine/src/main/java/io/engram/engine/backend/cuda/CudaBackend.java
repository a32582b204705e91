package io.engram.engine.backend.cuda;

import io.engram.engine.backend.Backend;
import io.engram.engine.backend.BackendException;
import io.engram.engine.backend.BoundWeight;
import io.engram.engine.backend.RopeTable;
import io.engram.engine.backend.cuda.GpuMemoryBudget.Use;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.WeightTensor;
import java.util.ArrayList;
import java.util.List;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/**
 * The CUDA backend: every op a kernel of {@code src/main/cuda/engram_kernels.cu}, launched on this backend's stream
 * through the driver API. Weights live on the device once per process ({@link WeightCache}); activations and KV
 * blocks come from this backend's {@link DeviceMemory}, inside the device's {@link GpuMemoryBudget}. Numerics: matrix
 * weights are BF16 on the device, activations F32; decode-sized matmuls (at most {@value #GEMV_MAX_TOKENS} tokens)
 * multiply BF16 weights with F32 activations, larger ones run on the tensor cores with activations rounded to BF16,
 * accumulating in F32. Checked against the CPU backend by {@code CudaParityTest}.
 *
 * <p>Threading: one caller thread at a time (the backend contract); several backends, on any threads, may share the
 * device. Each op makes the device's context current on the calling thread.
 */
public final class CudaBackend implements Backend {
    /** Matmuls of at most this many tokens take the decode path (F32 activations); larger ones the tensor cores. */
    public static final int GEMV_MAX_TOKENS = 8;

    private static final int STAGING_BYTES = 8 << 20;

    private final CudaDevice device;
    private final CUstream stream;
    private final DeviceMemory memory;
    private final Staging staging;
    private final List<CudaWeight> bound = new ArrayList<>();
    private final CudaAttention attention;
    private boolean closed;

    private CudaBackend(CudaDevice device) {
        this.device = device;
        device.makeCurrent();
        this.stream = new CUstream();
        JCudaDriver.cuStreamCreate(stream, 0); // a blocking stream: synchronous copies on the null stream order with it
        this.memory = new DeviceMemory(new CudaDevicePort(stream), device.budget());
        this.staging = new Staging(stream, memory, STAGING_BYTES);
        this.attention = new CudaAttention(device, memory, staging, this::launch);
    }

    /**
     * Opens a backend on device {@code ordinal}.
     *
     * @param budgetBytes GPU memory this process may use on the device (0: 90% of what is free); see {@link CudaDevice#acquire}
     * @throws BackendException when CUDA cannot be used, with the reason
     */
    public static CudaBackend open(int ordinal, long budgetBytes) {
        CudaDevice d = CudaDevice.acquire(ordinal, budgetBytes);
        try {
            return new CudaBackend(d);
        } catch (RuntimeException e) {
            d.release();
            throw e instanceof BackendException ? e : new BackendException("opening " + d + ": " + e.getMessage(), e);
        }
    }

    @Override
    public Kind kind() {
        return Kind.CUDA;
    }

    @Override
    public String describe() {
        return "cuda:%d %s (%d SMs, GPU memory budget %s)"
                .formatted(
                        device.ordinal(),
                        device.name(),
                        device.multiprocessors(),
                        GpuMemoryBudget.mib(device.budget().limit()));
    }

    public CudaDevice device() {
        return device;
    }

    // ---------------------------------------------------------------------------------------------------------------
    // memory

    @Override
    public Buf allocate(int floats) {
        return newBuf(floats, Use.ACTIVATIONS, "activations");
    }

    @Override
    public Buf allocateKv(int floats) {
        return newBuf(floats, Use.KV, "KV block rows");
    }

    private DeviceBuf newBuf(int floats, Use use, String what) {
        enter();
        if (floats < 1) {
            throw new BackendException("allocate: %d floats".formatted(floats));
        }
        DeviceMemory.Slot s = memory.allocate(use, floats * 4L, null, "%s of %d floats".formatted(what, floats));
        DeviceBuf b = new DeviceBuf(floats, s);
        memory.watch(b, s);
        return b;
    }

    @Override
    public void free(Buf b) {
        memory.free(DeviceBuf.of(b).slot);
    }

    private long addr(Buf b) {
        DeviceBuf d = DeviceBuf.of(b);
        memory.ensureResident(d.slot, "a KV buffer");
        return d.slot.address;
    }

    private void written(Buf b) {
        memory.deviceWritten(DeviceBuf.of(b).slot);
    }

    private static void checkRange(String op, Buf b, long off, long len) {
        if (off < 0 || len < 0 || off + len > b.size()) {
            throw new BackendException(
                    "%s: [%d, %d) outside a buffer of %d floats".formatted(op, off, off + len, b.size()));
        }
    }

    @Override
    public void write(Buf dst, int dstOff, float[] src, int srcOff, int len) {
        enter();
        checkRange("write", dst, dstOff, len);
        if (len == 0) {
            return;
        }
        JCudaDriver.cuMemcpyHtoD(
                DevicePointers.at(addr(dst) + dstOff * 4L), Pointer.to(src).withByteOffset(srcOff * 4L), len * 4L);
        written(dst);
    }

    @Override
    public void read(Buf src, int srcOff, float[] dst, int dstOff, int len) {
        enter();
        checkRange("read", src, srcOff, len);
        if (len == 0) {
            return;
        }
        // a synchronous copy on the null stream: waits for this backend's stream, so every staged argument is consumed
        JCudaDriver.cuMemcpyDtoH(
                Pointer.to(dst).withByteOffset(dstOff * 4L), DevicePointers.at(addr(src) + srcOff * 4L), len * 4L);
        staging.reset();
    }

    @Override
    public void copyRows(Buf src, int srcRow, Buf dst, int dstRow, int rows, int rowLen) {
        enter();
        long n = (long) rows * rowLen;
        checkRange("copy_rows", src, (long) srcRow * rowLen, n);
        checkRange("copy_rows", dst, (long) dstRow * rowLen, n);
        if (n == 0) {
            return;
        }
        long s = addr(src) + (long) srcRow * rowLen * 4;
        long d = addr(dst) + (long) dstRow * rowLen * 4;
        JCudaDriver.cuMemcpyDtoDAsync(DevicePointers.at(d), DevicePointers.at(s), n * 4, stream);
        written(dst);
    }

    /** Waits until every op issued so far has finished (for timing). */
    public void synchronize() {
        enter();
        JCudaDriver.cuStreamSynchronize(stream);
        staging.reset();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // weights and elementwise ops

    @Override
    public BoundWeight bind(WeightTensor tensor) {
        enter();
        CudaWeight w = device.weights().acquire(tensor);
        bound.add(w);
        return w;
    }

    @Override
    public void getRows(BoundWeight table, int[] ids, Buf out) {
        enter();
        CudaWeight t = CudaWeight.of(table);
        requireType("get_rows", t, DType.BF16);
        for (int id : ids) {
            if (id < 0 || id >= t.rows()) {
                throw new BackendException("get_rows: id %d outside [0, %d) of %s".formatted(id, t.rows(), t.name()));
            }
        }
        checkRange("get_rows", out, 0, (long) ids.length * t.cols());
        if (ids.length == 0) {
            return;
        }
        long idsDev = staging.putInts(ids);
        launch("engram_get_rows_bf16", ids.length, 1, 1, 256, 0, t.address(), idsDev, t.cols(), addr(out));
        written(out);
    }

    @Override
    public void rmsNorm(Buf x, BoundWeight gamma, float eps, int n, int dim, Buf out) {
        enter();
        CudaWeight g = CudaWeight.of(gamma);
        requireType("rms_norm", g, DType.F32);
        if (g.cols() != dim) {
            throw new BackendException(
                    "rms_norm: gain %s has %d values for rows of %d".formatted(g.name(), g.cols(), dim));
        }
        checkRange("rms_norm", x, 0, (long) n * dim);
        checkRange("rms_norm", out, 0, (long) n * dim);
        if (n == 0) {
            return;
        }
        launch("engram_rms_norm_f32", n, 1, 1, 256, 0, addr(x), g.address(), eps, dim, addr(out));
        written(out);
    }

    @Override
    public void matmul(BoundWeight w, Buf x, int n, Buf out) {
        enter();
        CudaWeight m = CudaWeight.of(w);
        requireType("matmul", m, DType.BF16);
        checkRange("matmul " + m.name(), x, 0, (long) n * m.cols());
        checkRange("matmul " + m.name(), out, 0, (long) n * m.rows());
        if (n == 0) {
            return;
        }
        if (n <= GEMV_MAX_TOKENS) {
            int warpsPerBlock = 8;
            launch(
                    "engram_matmul_gemv_bf16",
                    ceilDiv(m.rows(), warpsPerBlock),
                    1,
                    1,
                    32 * warpsPerBlock,
                    0,
                    m.address(),
                    addr(x),
                    n,
                    m.rows(),
                    m.cols(),
                    m.cols() % 8 == 0 ? 1 : 0,
                    addr(out));
        } else {
            launch(
                    "engram_matmul_wmma_bf16",
                    ceilDiv(m.rows(), 64),
                    ceilDiv(n, 64),
                    1,
                    128,
                    0,
                    m.address(),
                    addr(x),
                    n,
                    m.rows(),
                    m.cols(),
                    addr(out));
        }
        written(out);
    }

    @Override
    public void addBias(Buf x, BoundWeight bias, int n) {
        enter();
        CudaWeight b = CudaWeight.of(bias);
        requireType("add_bias", b, DType.F32);
        checkRange("add_bias", x, 0, (long) n * b.cols());
        long len = (long) n * b.cols();
        if (len == 0) {
            return;
        }
        launch("engram_add_bias_f32", gridFor(len), 1, 1, 256, 0, addr(x), b.address(), n, b.cols());
        written(x);
    }

    @Override
    public void add(Buf acc, Buf x, int len) {
        enter();
        checkRange("add", acc, 0, len);
        checkRange("add", x, 0, len);
        if (len == 0) {
            return;
        }
        launch("engram_add_f32", gridFor(len), 1, 1, 256, 0, addr(acc), addr(x), len);
        written(acc);
    }

    @Override
    public void swiglu(Buf gate, Buf up, int len, Buf out) {
        enter();
        checkRange("swiglu", gate, 0, len);
        checkRange("swiglu", up, 0, len);
        checkRange("swiglu", out, 0, len);
        if (len == 0) {
            return;
        }
        launch("engram_swiglu_f32", gridFor(len), 1, 1, 256, 0, addr(gate), addr(up), len, addr(out));
        written(out);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // attention

    @Override
    public void attention(
            int layer,
            Buf q,
            int n,
            long[] qSeq,
            AttentionPlan plan,
            RopeTable rope,
            AttentionShape shape,
            float scale,
            Buf out) {
        enter();
        attention.check(shape);
        checkRange("attention q", q, 0, (long) n * shape.qDim());
        checkRange("attention out", out, 0, (long) n * shape.qDim());
        if (n == 0) {
            return;
        }
        attention.run(layer, addr(q), n, qSeq, plan, rope, shape, scale, addr(out));
        written(out);
    }

    // ---------------------------------------------------------------------------------------------------------------
    // reports and lifecycle

    /**
     * Device memory as this backend sees it.
     *
     * @param weightBytes weights on the device (shared by the process's backends)
     * @param kvResidentBytes this backend's KV buffers on the device
     * @param kvMirroredBytes this backend's KV buffers evicted to host mirrors
     * @param evictions KV buffers evicted since open
     * @param budgetUsedBytes the device budget in use now, by every backend
     * @param budgetPeakBytes the most of the budget in use at once
     * @param budgetBytes the budget
     */
    public record MemoryReport(
            long weightBytes,
            long kvResidentBytes,
            long kvMirroredBytes,
            long evictions,
            long uploads,
            long budgetUsedBytes,
            long budgetPeakBytes,
            long budgetBytes) {}

    public MemoryReport memoryReport() {
        GpuMemoryBudget b = device.budget();
        return new MemoryReport(
                device.weights().bytes(),
                memory.residentKvBytes(),
                memory.mirroredKvBytes(),
                memory.evictions(),
                memory.uploads(),
                b.used(),
                b.peak(),
                b.limit());
    }

    /**
     * Waits for the stream, then releases in this order: weight references (the device frees a weight with its last
     * holder), the staging ring, every buffer of this backend (RoPE tables, activations, KV), the stream, the device.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        device.makeCurrent();
        JCudaDriver.cuStreamSynchronize(stream);
        for (CudaWeight w : bound) {
            device.weights().release(w);
        }
        bound.clear();
        staging.close();
        attention.close();
        memory.close();
        JCudaDriver.cuStreamDestroy(stream);
        device.release();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // launching

    private void enter() {
        if (closed) {
            throw new BackendException("the CUDA backend on " + device + " is closed");
        }
        device.makeCurrent();
    }

    private static void requireType(String op, CudaWeight w, DType t) {
        if (w.dtype() != t) {
            throw new BackendException("%s: %s is stored as %s on the device, the op needs %s (a %s)"
                    .formatted(op, w.name(), w.dtype(), t, t == DType.BF16 ? "matrix" : "vector"));
        }
    }

    private static int ceilDiv(long a, long b) {
        return Math.toIntExact((a + b - 1) / b);
    }

    private static int gridFor(long len) {
        return (int) Math.min(ceilDiv(len, 256), 65_535);
    }

    /** Launches {@code kernel}; arguments are Long (device addresses, 64-bit), Integer or Float, in the kernel's order. */
    private void launch(String kernel, int gx, int gy, int gz, int block, int sharedBytes, Object... args) {
        Pointer[] p = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            p[i] = switch (args[i]) {
                case Long l -> Pointer.to(new long[] {l});
                case Integer v -> Pointer.to(new int[] {v});
                case Float f -> Pointer.to(new float[] {f});
                default -> throw new IllegalArgumentException("kernel argument " + args[i]);
            };
        }
        try {
            JCudaDriver.cuLaunchKernel(
                    device.function(kernel), gx, gy, gz, block, 1, 1, sharedBytes, stream, Pointer.to(p), null);
        } catch (CudaException e) {
            throw new BackendException(
                    "kernel %s, grid (%d, %d, %d), block %d, %d bytes shared, on %s: %s"
                            .formatted(kernel, gx, gy, gz, block, sharedBytes, device, e.getMessage()),
                    e);
        }
    }
}
