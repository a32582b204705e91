package io.engram.engine.backend;

import io.engram.engine.tensor.Buf;

/**
 * Memory management shared by the backends whose buffers live on the JVM heap ({@link HostBuf}): allocation, copies
 * in and out, and row copies. The ops themselves stay in each backend.
 */
public abstract class HostMemoryBackend implements Backend {

    @Override
    public Buf allocate(int floats) {
        return new HostBuf(floats);
    }

    @Override
    public void write(Buf dst, int dstOff, float[] src, int srcOff, int len) {
        System.arraycopy(src, srcOff, HostBuf.of(dst), dstOff, len);
    }

    @Override
    public void read(Buf src, int srcOff, float[] dst, int dstOff, int len) {
        System.arraycopy(HostBuf.of(src), srcOff, dst, dstOff, len);
    }

    @Override
    public void copyRows(Buf src, int srcRow, Buf dst, int dstRow, int rows, int rowLen) {
        System.arraycopy(HostBuf.of(src), srcRow * rowLen, HostBuf.of(dst), dstRow * rowLen, rows * rowLen);
    }
}
