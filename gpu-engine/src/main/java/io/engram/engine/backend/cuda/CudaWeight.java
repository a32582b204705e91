package io.engram.engine.backend.cuda;

import io.engram.engine.backend.BackendException;
import io.engram.engine.backend.BoundWeight;
import io.engram.engine.tensor.DType;

/**
 * A weight on the device: matrices as BF16 {@code (rows, cols)} row-major, vectors (norm gains, biases) as F32. Owned
 * by the device's {@link WeightCache} and shared by every backend that bound the same tensor.
 *
 * @param dtype the device storage type (BF16 or F32), not the file's
 * @param address device address of element 0
 */
record CudaWeight(String name, DType dtype, int rows, int cols, long address, long bytes, WeightCache.Key key)
        implements BoundWeight {

    static CudaWeight of(BoundWeight w) {
        if (w instanceof CudaWeight c) {
            return c;
        }
        throw new BackendException("the CUDA backend was given a weight bound to another backend: " + w.name());
    }
}
