package io.engram.engine.backend.cuda;

/**
 * The device operations {@link DeviceMemory} needs: the CUDA driver on the backend's stream in production
 * ({@link CudaDevicePort}), plain host arrays in the allocator's unit tests. Addresses are opaque non-zero longs.
 * Copies are ordered with the kernels of the same stream; {@link #free} and {@link #freeHost} may only return memory
 * once the copies already issued on it are done.
 */
interface DevicePort {
    /** Allocates device memory. @throws GpuMemoryException when the device itself has no room */
    long alloc(long bytes);

    void free(long address);

    /** Allocates page-locked host memory (a KV buffer's mirror while it is evicted). */
    long allocHost(long bytes);

    void freeHost(long host);

    /** Copies device memory to a host mirror, asynchronously on the stream. */
    void download(long address, long host, long bytes);

    /** Copies a host mirror to device memory, asynchronously on the stream. */
    void upload(long host, long address, long bytes);
}
