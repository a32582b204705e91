package io.engram.topology.options;

/** Where a resolved value came from, highest precedence first. */
public enum OptionSource {
    /** {@code --set key=value} or a dedicated flag of the command. */
    CLI,
    /** An environment variable named after the key ({@link Option#envVar()}). */
    ENVIRONMENT,
    /** The properties file given by {@code --config} or {@code ENGRAM_CONFIG}. */
    CONFIG_FILE,
    /** The option's declared default. */
    DEFAULT
}
