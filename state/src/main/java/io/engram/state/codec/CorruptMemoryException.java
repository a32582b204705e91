package io.engram.state.codec;

/** Stored memory failed its checks (checksum, version, shape); it is never used. The message names session and block. */
public class CorruptMemoryException extends RuntimeException {
    public CorruptMemoryException(String message) {
        super(message);
    }
}
