package io.engram.engine.backend;

import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.WeightTensor;

/** A weight read in place from host memory (usually the model file's mapping). */
public record HostWeight(WeightTensor tensor) implements BoundWeight {
    @Override
    public String name() {
        return tensor.name();
    }

    @Override
    public DType dtype() {
        return tensor.dtype();
    }

    @Override
    public int rows() {
        return tensor.rows();
    }

    @Override
    public int cols() {
        return tensor.cols();
    }

    public static WeightTensor of(BoundWeight w) {
        if (w instanceof HostWeight h) {
            return h.tensor;
        }
        throw new BackendException("a host backend was given a weight bound to another backend: " + w.name());
    }
}
