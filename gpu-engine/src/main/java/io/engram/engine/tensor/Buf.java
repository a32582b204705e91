package io.engram.engine.tensor;

/**
 * An F32 activation or KV buffer owned by one {@link Backend}: host memory for the CPU and reference backends, device
 * memory for CUDA. Only the backend that allocated it may read or write it; others go through
 * {@link Backend#read}/{@link Backend#write}.
 */
public interface Buf {
    /** Capacity in floats. */
    int size();
}
