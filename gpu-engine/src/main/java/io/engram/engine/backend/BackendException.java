package io.engram.engine.backend;

/** A backend cannot run an op: wrong buffers or shapes, a device error, missing kernels. Names op and shapes. */
public class BackendException extends RuntimeException {
    public BackendException(String message) {
        super(message);
    }

    public BackendException(String message, Throwable cause) {
        super(message, cause);
    }
}
