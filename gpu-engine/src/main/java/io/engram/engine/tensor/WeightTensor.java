package io.engram.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A named weight in its storage type, backed by (usually memory-mapped) little-endian bytes. Shapes follow the
 * PyTorch convention, outermost first: a matrix is {@code [rows, cols]} = {@code [out, in]}, row-major, and every row
 * starts at {@code row * rowBytes()}. A vector has shape {@code [n]}. Immutable; the memory's lifetime belongs to the
 * loader that created it.
 */
public record WeightTensor(String name, DType dtype, long[] shape, MemorySegment data) {

    public WeightTensor {
        if (shape.length == 0 || shape.length > 2) {
            throw new IllegalArgumentException("tensor '%s': only 1-D and 2-D weights are supported, got shape %s"
                    .formatted(name, Arrays.toString(shape)));
        }
        long expected = dtype.bytesFor(elementCount(shape));
        if (data.byteSize() != expected) {
            throw new IllegalArgumentException("tensor '%s' (%s %s) needs %d bytes but has %d"
                    .formatted(name, dtype, Arrays.toString(shape), expected, data.byteSize()));
        }
    }

    public static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public int rows() {
        return shape.length == 1 ? 1 : Math.toIntExact(shape[0]);
    }

    public int cols() {
        return Math.toIntExact(shape[shape.length - 1]);
    }

    public long rowBytes() {
        return dtype.bytesFor(cols());
    }

    public long elementCount() {
        return elementCount(shape);
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
