package io.engram.topology.options;

/** A setting is missing, unknown or out of range. The message names the option key, the value given and where from. */
public class ConfigException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
