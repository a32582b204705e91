package io.engram.engine.backend;

import io.engram.engine.tensor.DType;

/** A weight made ready for one backend (kept mapped on the host, requantized, or uploaded to a device). */
public interface BoundWeight {
    String name();

    DType dtype();

    /** Output features (1 for a vector). */
    int rows();

    /** Input features (the length of a vector). */
    int cols();
}
