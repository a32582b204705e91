package io.engram.engine.backend.cuda;

import io.engram.engine.backend.cuda.GpuMemoryBudget.Use;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashMap;
import java.util.Map;
import jcuda.Pointer;
import jcuda.driver.JCudaDriver;

/**
 * The weights uploaded to one device, shared by every backend of the process: a tensor is uploaded the first time a
 * backend binds it and freed when the last backend that bound it closes. Keyed by the tensor's memory (its mapping in
 * the model file, which {@link io.engram.engine.model.ModelRegistry} shares per process), so two backends over the same
 * loaded model share one copy. Matrices are stored as BF16 (decoded from any file type, rounded to nearest even),
 * vectors as F32. Charged to the device's {@link GpuMemoryBudget} as {@link Use#WEIGHTS}. Thread-safe.
 */
final class WeightCache {
    /** Identity of a tensor's bytes: the heap array behind them (or null), their address, size, name and type. */
    record Key(Object heapBase, long address, long bytes, String name, DType dtype) {
        static Key of(WeightTensor t) {
            MemorySegment d = t.data();
            return new Key(d.heapBase().orElse(null), d.address(), d.byteSize(), t.name(), t.dtype());
        }
    }

    private static final class Entry {
        final CudaWeight weight;
        int refs;

        Entry(CudaWeight weight) {
            this.weight = weight;
        }
    }

    /** Elements converted and copied per driver call while uploading. */
    private static final int CHUNK = 1 << 22;

    private final CudaDevice device;
    private final Map<Key, Entry> entries = new HashMap<>();

    WeightCache(CudaDevice device) {
        this.device = device;
    }

    /** The device copy of {@code t}, uploaded now if no backend holds it. The caller's context must be current. */
    synchronized CudaWeight acquire(WeightTensor t) {
        Key key = Key.of(t);
        Entry e = entries.get(key);
        if (e == null) {
            e = new Entry(upload(t, key));
            entries.put(key, e);
        }
        e.refs++;
        return e.weight;
    }

    synchronized void release(CudaWeight w) {
        Entry e = entries.get(w.key());
        if (e == null || e.weight != w) {
            throw new IllegalStateException("weight " + w.name() + " released but not held");
        }
        if (--e.refs == 0) {
            entries.remove(w.key());
            JCudaDriver.cuMemFree(DevicePointers.at(w.address()));
            device.budget().release(Use.WEIGHTS, w.bytes());
        }
    }

    /** Bytes of weights on the device. */
    synchronized long bytes() {
        long n = 0;
        for (Entry e : entries.values()) {
            n += e.weight.bytes();
        }
        return n;
    }

    private CudaWeight upload(WeightTensor t, Key key) {
        boolean matrix = t.shape().length >= 2;
        DType type = matrix ? DType.BF16 : DType.F32;
        long elements = t.elementCount();
        long bytes = elements * (matrix ? 2 : 4);
        device.budget()
                .reserve(
                        Use.WEIGHTS, bytes, "weight '%s' %s".formatted(t.name(), java.util.Arrays.toString(t.shape())));
        DevicePointers.Allocated p = new DevicePointers.Allocated();
        try {
            JCudaDriver.cuMemAlloc(p, bytes);
        } catch (RuntimeException ex) {
            device.budget().release(Use.WEIGHTS, bytes);
            throw new GpuMemoryException("cuda could not allocate %s for weight '%s': %s"
                    .formatted(GpuMemoryBudget.mib(bytes), t.name(), ex.getMessage()));
        }
        long address = p.address();
        if (matrix && t.dtype() == DType.BF16) {
            byte[] chunk = new byte[(int) Math.min(t.data().byteSize(), CHUNK * 2L)];
            for (long off = 0; off < bytes; off += chunk.length) {
                int n = (int) Math.min(chunk.length, bytes - off);
                MemorySegment.copy(t.data(), ValueLayout.JAVA_BYTE, off, chunk, 0, n);
                JCudaDriver.cuMemcpyHtoD(DevicePointers.at(address + off), Pointer.to(chunk), n);
            }
        } else {
            // decode whole rows (quantized types decode in whole blocks) and convert
            int cols = matrix ? t.cols() : (int) elements;
            int rowsPerChunk = Math.max(1, CHUNK / cols);
            long rows = elements / cols;
            float[] f = new float[rowsPerChunk * cols];
            short[] h = matrix ? new short[f.length] : null;
            for (long r0 = 0; r0 < rows; r0 += rowsPerChunk) {
                int nr = (int) Math.min(rowsPerChunk, rows - r0);
                int n = nr * cols;
                for (int r = 0; r < nr; r++) {
                    Quant.decode(t.dtype(), t.data(), (r0 + r) * cols, f, r * cols, cols);
                }
                if (matrix) {
                    for (int i = 0; i < n; i++) {
                        h[i] = Quant.floatToBf16(f[i]);
                    }
                    JCudaDriver.cuMemcpyHtoD(DevicePointers.at(address + r0 * cols * 2), Pointer.to(h), n * 2L);
                } else {
                    JCudaDriver.cuMemcpyHtoD(DevicePointers.at(address + r0 * cols * 4), Pointer.to(f), n * 4L);
                }
            }
        }
        int rowsOut = matrix ? t.rows() : 1;
        int colsOut = matrix ? t.cols() : (int) elements;
        return new CudaWeight(t.name(), type, rowsOut, colsOut, address, bytes, key);
    }

    /** Frees what is left (backends that never closed). */
    synchronized void close() {
        for (Entry e : entries.values()) {
            JCudaDriver.cuMemFree(DevicePointers.at(e.weight.address()));
            device.budget().release(Use.WEIGHTS, e.weight.bytes());
        }
        entries.clear();
    }
}
