package io.engram.state.session;

/** Stored memory built with another model or block size than the engine that would read it. */
public final class IncompatibleMemoryException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public IncompatibleMemoryException(String message) {
        super(message);
    }
}
