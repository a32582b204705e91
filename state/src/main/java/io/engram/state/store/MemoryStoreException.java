package io.engram.state.store;

/** A memory store operation failed; the message names the store, the session and, where it applies, the path. */
public class MemoryStoreException extends RuntimeException {
    public MemoryStoreException(String message) {
        super(message);
    }

    public MemoryStoreException(String message, Throwable cause) {
        super(message, cause);
    }
}
