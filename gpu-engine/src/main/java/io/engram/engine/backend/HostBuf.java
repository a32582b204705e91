package io.engram.engine.backend;

import io.engram.engine.tensor.Buf;

/** A buffer in JVM heap memory, used by the host backends. */
public record HostBuf(float[] data) implements Buf {
    public HostBuf(int size) {
        this(new float[size]);
    }

    @Override
    public int size() {
        return data.length;
    }

    /** The array behind a buffer that must be a host buffer. @throws BackendException otherwise */
    public static float[] of(Buf b) {
        if (b instanceof HostBuf h) {
            return h.data;
        }
        throw new BackendException("a host backend was given a buffer of another backend: "
                + b.getClass().getSimpleName());
    }
}
