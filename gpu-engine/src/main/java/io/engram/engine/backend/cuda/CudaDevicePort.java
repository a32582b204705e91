package io.engram.engine.backend.cuda;

import jcuda.Pointer;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/** {@link DevicePort} over the CUDA driver, copying on one backend's stream. The backend's context must be current. */
final class CudaDevicePort implements DevicePort {
    private final CUstream stream;

    CudaDevicePort(CUstream stream) {
        this.stream = stream;
    }

    @Override
    public long alloc(long bytes) {
        DevicePointers.Allocated p = new DevicePointers.Allocated();
        try {
            JCudaDriver.cuMemAlloc(p, bytes);
        } catch (RuntimeException e) {
            throw new GpuMemoryException(
                    "the device has no room for %s more (%s); lower engram.engine.gpu-memory-mb so "
                                    .formatted(GpuMemoryBudget.mib(bytes), e.getMessage())
                            + "the budget fits what the GPU has free");
        }
        return p.address();
    }

    @Override
    public void free(long address) {
        JCudaDriver.cuStreamSynchronize(stream); // copies out of it may still be in flight
        JCudaDriver.cuMemFree(DevicePointers.at(address));
    }

    @Override
    public long allocHost(long bytes) {
        HostPointer p = new HostPointer();
        JCudaDriver.cuMemAllocHost(p, bytes);
        return p.address();
    }

    @Override
    public void freeHost(long host) {
        JCudaDriver.cuStreamSynchronize(stream);
        JCudaDriver.cuMemFreeHost(HostPointer.at(host));
    }

    @Override
    public void download(long address, long host, long bytes) {
        JCudaDriver.cuMemcpyDtoHAsync(HostPointer.at(host), DevicePointers.at(address), bytes, stream);
    }

    @Override
    public void upload(long host, long address, long bytes) {
        JCudaDriver.cuMemcpyHtoDAsync(DevicePointers.at(address), HostPointer.at(host), bytes, stream);
    }

    /** A page-locked host pointer and its raw address. */
    static final class HostPointer extends Pointer {
        private static final HostPointer ZERO = new HostPointer();

        HostPointer() {}

        private HostPointer(HostPointer base, long offset) {
            super(base, offset);
        }

        long address() {
            return getNativePointer() + getByteOffset();
        }

        static Pointer at(long address) {
            return new HostPointer(ZERO, address);
        }
    }
}
