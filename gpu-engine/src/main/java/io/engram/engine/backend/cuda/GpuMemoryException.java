package io.engram.engine.backend.cuda;

import io.engram.engine.backend.BackendException;

/** A device allocation would pass the configured GPU memory budget (or the device is out of memory). */
public final class GpuMemoryException extends BackendException {
    public GpuMemoryException(String message) {
        super(message);
    }
}
