package io.engram.engine.tensor;

/**
 * Where a KV cache keeps its rows: buffers of one backend (heap, or device memory), allocated, written, read and
 * copied by row. The part of a backend the cache needs, so that the cache does not depend on the op vocabulary.
 */
public interface BufferSpace {

    /** A buffer for the K or V rows of one layer of a KV block ({@code floats} floats). */
    Buf allocateKv(int floats);

    void write(Buf dst, int dstOff, float[] src, int srcOff, int len);

    void read(Buf src, int srcOff, float[] dst, int dstOff, int len);

    /** Copies {@code rows} rows of {@code rowLen} floats from {@code src} at {@code srcRow} to {@code dst} at {@code dstRow}. */
    void copyRows(Buf src, int srcRow, Buf dst, int dstRow, int rows, int rowLen);
}
