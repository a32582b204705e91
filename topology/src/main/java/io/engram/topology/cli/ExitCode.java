package io.engram.topology.cli;

/** The CLI's exit codes. Scripts may rely on them. */
public enum ExitCode {
    /** Done as asked. */
    OK(0),
    /** A bad flag, option value, file or input line: fix the input and retry. */
    INVALID_INPUT(2),
    /** Something Engram needs is not there (broker, endpoint, answer within the timeout, session stage). */
    UNAVAILABLE(3),
    /** A bug or an unexpected state; {@code --verbose} prints the stack trace. */
    INTERNAL(4);

    private final int code;

    ExitCode(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }
}
