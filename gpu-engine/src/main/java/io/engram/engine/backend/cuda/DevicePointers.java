package io.engram.engine.backend.cuda;

import jcuda.driver.CUdeviceptr;

/** Conversions between JCuda's device pointer objects and the raw addresses the allocator and kernels use. */
final class DevicePointers {
    private static final CUdeviceptr ZERO = new CUdeviceptr();

    private DevicePointers() {}

    /** A pointer object for a raw device address (JCuda passes base + byte offset to the driver). */
    static CUdeviceptr at(long address) {
        return ZERO.withByteOffset(address);
    }

    /** A device pointer whose raw address can be read back after {@code cuMemAlloc} filled it. */
    static final class Allocated extends CUdeviceptr {
        long address() {
            return getNativePointer();
        }
    }
}
