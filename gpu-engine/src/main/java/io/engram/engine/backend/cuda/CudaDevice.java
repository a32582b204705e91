package io.engram.engine.backend.cuda;

import io.engram.engine.backend.BackendException;
import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import jcuda.CudaException;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One GPU as this process uses it: the device's primary context, Engram's kernels loaded from the PTX shipped in the
 * jar ({@code cuModuleLoadData}, JIT-compiled by the driver for the device), the process-wide
 * {@link GpuMemoryBudget} and the {@link WeightCache} every {@link CudaBackend} on the device shares. Only the driver
 * API is used ({@code libcuda.so.1}); no runtime, NVRTC or cuBLAS library is needed.
 *
 * <p>Reference-counted per device ordinal: {@link #acquire} when a backend opens, {@link #release} when it closes;
 * the module is unloaded and the context released with the last backend. Thread-safe.
 */
public final class CudaDevice {
    private static final Logger LOG = LoggerFactory.getLogger(CudaDevice.class);
    /** The PTX built from src/main/cuda by the gpu-engine build (profile cuda-kernels). */
    public static final String KERNELS_RESOURCE = "/io/engram/engine/backend/cuda/engram_kernels.ptx";

    private static final Map<Integer, CudaDevice> OPEN = new HashMap<>();

    private final int ordinal;
    private final CUdevice device;
    private final CUcontext context;
    private final CUmodule module;
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final String name;
    private final int multiprocessors;
    private final long totalMemory;
    private final GpuMemoryBudget budget;
    private final WeightCache weights;
    private int refs;

    private CudaDevice(int ordinal, long budgetBytes, byte[] ptx) {
        this.ordinal = ordinal;
        this.device = new CUdevice();
        JCudaDriver.cuDeviceGet(device, ordinal);
        byte[] nameBytes = new byte[256];
        JCudaDriver.cuDeviceGetName(nameBytes, nameBytes.length, device);
        this.name = new String(nameBytes, 0, indexOfZero(nameBytes), java.nio.charset.StandardCharsets.US_ASCII);
        int[] v = new int[1];
        JCudaDriver.cuDeviceGetAttribute(v, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device);
        this.multiprocessors = v[0];
        this.context = new CUcontext();
        JCudaDriver.cuDevicePrimaryCtxRetain(context, device);
        JCudaDriver.cuCtxSetCurrent(context);
        long[] free = new long[1];
        long[] total = new long[1];
        JCudaDriver.cuMemGetInfo(free, total);
        this.totalMemory = total[0];
        long limit = budgetBytes > 0 ? budgetBytes : (long) (free[0] * 0.9);
        if (budgetBytes > free[0]) {
            LOG.warn(
                    "GPU memory budget {} on cuda:{} is more than the {} free now; allocations may fail at the device",
                    GpuMemoryBudget.mib(budgetBytes),
                    ordinal,
                    GpuMemoryBudget.mib(free[0]));
        }
        this.budget = new GpuMemoryBudget(limit, "cuda:%d (%s)".formatted(ordinal, name));
        this.module = new CUmodule();
        byte[] z = java.util.Arrays.copyOf(ptx, ptx.length + 1); // the driver reads PTX as a C string
        try {
            JCudaDriver.cuModuleLoadData(module, z);
        } catch (CudaException e) {
            JCudaDriver.cuDevicePrimaryCtxRelease(device);
            throw new BackendException(
                    "cuda:%d (%s) rejected Engram's PTX kernels (%s): the driver may be older than the "
                                    .formatted(ordinal, name, e.getMessage())
                            + "CUDA toolkit that built them",
                    e);
        }
        this.weights = new WeightCache(this);
        LOG.info(
                "cuda:{} {} ready: {} multiprocessors, {} total, {} free, budget {}",
                ordinal,
                name,
                multiprocessors,
                GpuMemoryBudget.mib(total[0]),
                GpuMemoryBudget.mib(free[0]),
                GpuMemoryBudget.mib(limit));
    }

    private static int indexOfZero(byte[] b) {
        for (int i = 0; i < b.length; i++) {
            if (b[i] == 0) {
                return i;
            }
        }
        return b.length;
    }

    /**
     * Opens (or shares) device {@code ordinal}.
     *
     * @param budgetBytes the GPU memory this process may use on the device; 0 = 90% of what is free at first open. A
     *     later acquire of an open device shares the first budget.
     * @throws BackendException when there is no driver, no such device, or no kernels in the jar
     */
    public static CudaDevice acquire(int ordinal, long budgetBytes) {
        byte[] ptx = kernels();
        initDriver();
        synchronized (OPEN) {
            CudaDevice d = OPEN.get(ordinal);
            if (d == null) {
                int[] count = new int[1];
                JCudaDriver.cuDeviceGetCount(count);
                if (ordinal < 0 || ordinal >= count[0]) {
                    throw new BackendException(
                            "no CUDA device %d: the driver sees %d device(s)".formatted(ordinal, count[0]));
                }
                d = new CudaDevice(ordinal, budgetBytes, ptx);
                OPEN.put(ordinal, d);
            } else if (budgetBytes > 0 && budgetBytes != d.budget.limit()) {
                LOG.warn(
                        "cuda:{} is already open with a budget of {}; ignoring the {} asked for now",
                        ordinal,
                        GpuMemoryBudget.mib(d.budget.limit()),
                        GpuMemoryBudget.mib(budgetBytes));
            }
            d.refs++;
            return d;
        }
    }

    /** Drops a reference taken by {@link #acquire}; the last one unloads the kernels and releases the context. */
    public void release() {
        synchronized (OPEN) {
            if (--refs > 0) {
                return;
            }
            OPEN.remove(ordinal);
            makeCurrent();
            weights.close();
            JCudaDriver.cuModuleUnload(module);
            JCudaDriver.cuDevicePrimaryCtxRelease(device);
            LOG.info(
                    "cuda:{} released (peak use {} of {})",
                    ordinal,
                    GpuMemoryBudget.mib(budget.peak()),
                    GpuMemoryBudget.mib(budget.limit()));
        }
    }

    /**
     * Why CUDA cannot be used here, or empty when a device, the driver and the kernels are all present. Loads the
     * JCuda native library and initialises the driver, nothing more.
     */
    public static Optional<String> unavailableReason() {
        try {
            kernels();
            initDriver();
            int[] count = new int[1];
            JCudaDriver.cuDeviceGetCount(count);
            return count[0] > 0 ? Optional.empty() : Optional.of("the CUDA driver sees no device");
        } catch (BackendException e) {
            return Optional.of(e.getMessage());
        }
    }

    private static volatile boolean initialised;

    private static synchronized void initDriver() {
        if (initialised) {
            return;
        }
        try {
            JCudaDriver.setExceptionsEnabled(true); // the one place: every driver error below throws CudaException
            JCudaDriver.cuInit(0);
        } catch (LinkageError e) {
            // JCuda's message carries the stack traces of every load attempt: its first line says what was missing
            String first = String.valueOf(e.getMessage())
                    .lines()
                    .findFirst()
                    .orElse("")
                    .strip();
            throw new BackendException(
                    "no usable CUDA driver (" + first + "): --device cuda needs an NVIDIA GPU with its "
                            + "driver (libcuda.so.1) on x86-64 or aarch64 Linux; use --device cpu or --device auto here",
                    e);
        } catch (CudaException e) {
            throw new BackendException("the CUDA driver failed to initialise: " + e.getMessage(), e);
        }
        initialised = true;
    }

    /** The PTX of Engram's kernels from the classpath. @throws BackendException when the jar was built without them */
    static byte[] kernels() {
        try (InputStream in = CudaDevice.class.getResourceAsStream(KERNELS_RESOURCE)) {
            if (in == null) {
                throw new BackendException(
                        "the CUDA kernels are missing: " + KERNELS_RESOURCE.substring(1) + " is not on the "
                                + "classpath, so this gpu-engine build ran without nvcc. Rebuild with the CUDA toolkit installed "
                                + "(profile cuda-kernels, active when /usr/local/cuda/bin/nvcc exists) to use --device cuda.");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new BackendException("reading " + KERNELS_RESOURCE + ": " + e.getMessage(), e);
        }
    }

    /** Makes this device's context current on the calling thread. */
    void makeCurrent() {
        JCudaDriver.cuCtxSetCurrent(context);
    }

    /** A kernel of the module by its entry name. */
    synchronized CUfunction function(String entry) {
        return functions.computeIfAbsent(entry, e -> {
            CUfunction f = new CUfunction();
            try {
                JCudaDriver.cuModuleGetFunction(f, module, e);
            } catch (CudaException ex) {
                throw new BackendException(
                        "kernel " + e + " is not in " + KERNELS_RESOURCE + ": " + ex.getMessage(), ex);
            }
            return f;
        });
    }

    public int ordinal() {
        return ordinal;
    }

    public String name() {
        return name;
    }

    public int multiprocessors() {
        return multiprocessors;
    }

    public long totalMemory() {
        return totalMemory;
    }

    public GpuMemoryBudget budget() {
        return budget;
    }

    WeightCache weights() {
        return weights;
    }

    @Override
    public String toString() {
        return "cuda:%d (%s)".formatted(ordinal, name);
    }
}
