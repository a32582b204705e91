package io.engram.engine.backend.cuda;

import io.engram.engine.backend.BackendException;
import io.engram.engine.backend.cuda.GpuMemoryBudget.Use;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/**
 * Small per-op arguments (token ids, positions, attention segment tables) on their way to the device: a ring of
 * page-locked host memory mirrored by a ring of device memory, filled front to back and copied asynchronously on the
 * backend's stream, so an op never waits for the device to upload its arguments. The ring starts over when the
 * backend has synchronised with the stream ({@link #reset}) or, when full, after synchronising.
 */
final class Staging implements AutoCloseable {
    private static final int ALIGN = 16;
    private final CUstream stream;
    private final DeviceMemory memory;
    private final DeviceMemory.Slot deviceRing;
    private final CudaDevicePort.HostPointer hostRing = new CudaDevicePort.HostPointer();
    private final ByteBuffer host;
    private final int capacity;
    private int used;

    Staging(CUstream stream, DeviceMemory memory, int capacity) {
        this.stream = stream;
        this.memory = memory;
        this.capacity = capacity;
        this.deviceRing = memory.allocate(Use.WORKSPACE, capacity, null, "argument staging ring");
        JCudaDriver.cuMemAllocHost(hostRing, capacity);
        this.host = hostRing.getByteBuffer(0, capacity).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Makes room for {@code bytes} of arguments that one op stages in several {@link #put}s, so that none of them
     * starts the ring over (which would let a later put overwrite an earlier one of the same op).
     */
    void reserve(int bytes) {
        int need = bytes + 16 * ALIGN;
        if (need > capacity) {
            throw new BackendException(
                    "an op's arguments take %d bytes, more than the %d-byte staging ring".formatted(bytes, capacity));
        }
        if (used + need > capacity) {
            JCudaDriver.cuStreamSynchronize(stream);
            used = 0;
        }
    }

    /** Copies {@code src[0..limit)} to the device. @return its device address, valid for ops issued before the next reset */
    long put(ByteBuffer src) {
        int len = src.limit();
        if (len > capacity) {
            throw new BackendException(
                    "an op's arguments take %d bytes, more than the %d-byte staging ring".formatted(len, capacity));
        }
        if (used + len > capacity) {
            JCudaDriver.cuStreamSynchronize(stream);
            used = 0;
        }
        int off = used;
        host.put(off, src, 0, len);
        long address = deviceRing.address + off;
        JCudaDriver.cuMemcpyHtoDAsync(DevicePointers.at(address), hostRing.withByteOffset(off), len, stream);
        used = (off + len + ALIGN - 1) / ALIGN * ALIGN;
        return address;
    }

    long putInts(int[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(v);
        return put(b);
    }

    long putLongs(long[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(v);
        return put(b);
    }

    /** The stream has been synchronised: every staged copy is done and the ring may be reused from the start. */
    void reset() {
        used = 0;
    }

    @Override
    public void close() {
        JCudaDriver.cuStreamSynchronize(stream);
        JCudaDriver.cuMemFreeHost(hostRing);
        memory.free(deviceRing);
    }
}
