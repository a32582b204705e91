package io.engram.engine.backend.cuda;

import io.engram.engine.backend.BackendException;
import io.engram.engine.tensor.Buf;

/**
 * An F32 buffer of the CUDA backend: activations, scratch, or the K or V rows of one layer of a KV block (then it may
 * be evicted to a host mirror and uploaded again, see {@link DeviceMemory}). Its device address can change across
 * evictions; ops read it through {@link CudaBackend}, never keep it.
 */
final class DeviceBuf implements Buf {
    final int floats;
    final DeviceMemory.Slot slot;

    DeviceBuf(int floats, DeviceMemory.Slot slot) {
        this.floats = floats;
        this.slot = slot;
    }

    @Override
    public int size() {
        return floats;
    }

    static DeviceBuf of(Buf b) {
        if (b instanceof DeviceBuf d) {
            return d;
        }
        throw new BackendException("the CUDA backend was given a buffer of another backend: "
                + b.getClass().getSimpleName());
    }
}
