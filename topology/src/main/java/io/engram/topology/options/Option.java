package io.engram.topology.options;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One typed, documented setting: key, type, default, description and validator. Declared as {@code public static final}
 * constants in an {@code XxxOptions} class next to the component that reads it; resolved by {@link ResolvedOptions}.
 *
 * <pre>{@code
 * public static final Option<Integer> PARALLELISM = Option.intKey("engram.job.parallelism")
 *         .defaultValue(2).check(v -> v > 0, "> 0")
 *         .description("Parallelism of every operator of the Flink job.");
 * }</pre>
 *
 * <p>Keys are hierarchical kebab-case ({@code engram.kafka.topic.input}); the environment variable is the key upper-cased
 * with dots and dashes as underscores ({@code ENGRAM_KAFKA_TOPIC_INPUT}). Immutable and thread-safe.
 *
 * @param <T> the value type
 */
public final class Option<T> {

    private static final Pattern KEY = Pattern.compile("engram(\\.[a-z][a-z0-9]*(-[a-z0-9]+)*)+");
    private static final Pattern DURATION = Pattern.compile("(\\d+)\\s*(ms|s|min|h|d)");

    private final String key;
    private final String typeName;
    private final Function<String, T> parser;
    private final Function<T, String> formatter;
    private final T defaultValue;
    private final Predicate<T> check;
    private final String constraint;
    private final String description;

    private Option(Builder<T> b, String description) {
        this.key = b.key;
        this.typeName = b.typeName;
        this.parser = b.parser;
        this.formatter = b.formatter;
        this.defaultValue = b.defaultValue;
        this.check = b.check;
        this.constraint = b.constraint;
        this.description = description;
        if (defaultValue != null && !check.test(defaultValue)) {
            throw new IllegalArgumentException(
                    "default of " + key + " (" + format(defaultValue) + ") is not " + constraint);
        }
    }

    public static Builder<String> stringKey(String key) {
        return new Builder<>(key, "string", s -> s, s -> s);
    }

    public static Builder<Integer> intKey(String key) {
        return new Builder<>(key, "int", s -> Integer.valueOf(s.strip()), String::valueOf);
    }

    public static Builder<Long> longKey(String key) {
        return new Builder<>(key, "long", s -> Long.valueOf(s.strip()), String::valueOf);
    }

    public static Builder<Double> doubleKey(String key) {
        return new Builder<>(key, "double", s -> Double.valueOf(s.strip()), String::valueOf);
    }

    public static Builder<Boolean> booleanKey(String key) {
        return new Builder<>(key, "boolean", Option::parseBoolean, String::valueOf);
    }

    /** Durations are written {@code 500ms}, {@code 2s}, {@code 10min}, {@code 1h}, {@code 1d} or ISO-8601 ({@code PT2S}). */
    public static Builder<Duration> durationKey(String key) {
        return new Builder<>(key, "duration", Option::parseDuration, Option::formatDuration);
    }

    public static Builder<Path> pathKey(String key) {
        return new Builder<>(key, "path", s -> Path.of(s.strip()), Path::toString);
    }

    public static <E extends Enum<E>> Builder<E> enumKey(String key, Class<E> type) {
        String names = String.join(
                "|", Arrays.stream(type.getEnumConstants()).map(Enum::name).toList());
        return new Builder<>(
                key,
                names,
                s -> Enum.valueOf(type, s.strip().toUpperCase(Locale.ROOT).replace('-', '_')),
                Enum::name);
    }

    public String key() {
        return key;
    }

    /** The type as shown to users: {@code int}, {@code duration}, or the enum's constants. */
    public String typeName() {
        return typeName;
    }

    /** True when the option has a default; options without one must be given when they are read. */
    public boolean hasDefault() {
        return defaultValue != null;
    }

    /** The default, or null when the option has none. */
    public T defaultValue() {
        return defaultValue;
    }

    /** The accepted values in words, e.g. {@code "> 0"}; empty when any value of the type is accepted. */
    public String constraint() {
        return constraint;
    }

    public String description() {
        return description;
    }

    /** {@code ENGRAM_KAFKA_TOPIC_INPUT} for {@code engram.kafka.topic.input}. */
    public String envVar() {
        return key.toUpperCase(Locale.ROOT).replace('.', '_').replace('-', '_');
    }

    /** The value as a user would write it. */
    public String format(T value) {
        return value == null ? "" : formatter.apply(value);
    }

    /**
     * Parses and validates a raw value.
     *
     * @param origin where the value came from, for the message (e.g. {@code "environment variable ENGRAM_X"})
     * @throws ConfigException naming key, value, origin and the accepted values
     */
    public T parse(String raw, String origin) {
        T value;
        try {
            value = parser.apply(raw);
        } catch (RuntimeException e) {
            throw new ConfigException(
                    "%s = '%s' (from %s) is not a valid %s%s"
                            .formatted(key, raw, origin, typeName, e.getMessage() == null ? "" : ": " + e.getMessage()),
                    e);
        }
        validate(value, raw, origin);
        return value;
    }

    void validate(T value, String raw, String origin) {
        if (!check.test(value)) {
            throw new ConfigException(
                    "%s = '%s' (from %s) is out of range; expected %s".formatted(key, raw, origin, constraint));
        }
    }

    @Override
    public String toString() {
        return key;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Option<?> other && key.equals(other.key);
    }

    @Override
    public int hashCode() {
        return key.hashCode();
    }

    private static Boolean parseBoolean(String s) {
        return switch (s.strip().toLowerCase(Locale.ROOT)) {
            case "true", "yes", "on" -> true;
            case "false", "no", "off" -> false;
            default -> throw new IllegalArgumentException("expected true or false");
        };
    }

    static Duration parseDuration(String s) {
        String t = s.strip();
        if (t.startsWith("P") || t.startsWith("p")) {
            return Duration.parse(t);
        }
        Matcher m = DURATION.matcher(t);
        if (!m.matches()) {
            throw new IllegalArgumentException("expected e.g. 500ms, 2s, 10min, 1h or PT2S");
        }
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2)) {
            case "ms" -> Duration.ofMillis(n);
            case "s" -> Duration.ofSeconds(n);
            case "min" -> Duration.ofMinutes(n);
            case "h" -> Duration.ofHours(n);
            default -> Duration.ofDays(n);
        };
    }

    static String formatDuration(Duration d) {
        long ms = d.toMillis();
        if (ms % 86_400_000L == 0 && ms != 0) {
            return ms / 86_400_000L + "d";
        } else if (ms % 3_600_000L == 0 && ms != 0) {
            return ms / 3_600_000L + "h";
        } else if (ms % 60_000L == 0 && ms != 0) {
            return ms / 60_000L + "min";
        } else if (ms % 1000L == 0) {
            return ms / 1000L + "s";
        }
        return ms + "ms";
    }

    /**
     * Builds an {@link Option}: key and type first, then default (or {@link #noDefault()}), an optional check, and
     * {@link #description(String)} last.
     */
    public static final class Builder<T> {
        private final String key;
        private final String typeName;
        private final Function<String, T> parser;
        private final Function<T, String> formatter;
        private T defaultValue;
        private boolean defaultDecided;
        private Predicate<T> check = v -> true;
        private String constraint = "";

        private Builder(String key, String typeName, Function<String, T> parser, Function<T, String> formatter) {
            if (!KEY.matcher(key).matches()) {
                throw new IllegalArgumentException("option key '" + key + "' is not engram.<kebab-case>.<...>");
            }
            this.key = key;
            this.typeName = typeName;
            this.parser = parser;
            this.formatter = formatter;
        }

        public Builder<T> defaultValue(T value) {
            this.defaultValue = Objects.requireNonNull(value, "default of " + key);
            this.defaultDecided = true;
            return this;
        }

        /** The option has no default: reading it when nobody set it is a {@link ConfigException}. */
        public Builder<T> noDefault() {
            this.defaultDecided = true;
            return this;
        }

        /** Accepts only values passing {@code check}; {@code constraint} says which in words, for error messages. */
        public Builder<T> check(Predicate<T> check, String constraint) {
            this.check = Objects.requireNonNull(check);
            this.constraint = Objects.requireNonNull(constraint);
            return this;
        }

        public Option<T> description(String description) {
            if (!defaultDecided) {
                throw new IllegalStateException(
                        key + ": call defaultValue(...) or noDefault() before description(...)");
            }
            if (description == null || description.isBlank()) {
                throw new IllegalArgumentException(key + ": every option needs a description");
            }
            return new Option<>(this, description);
        }
    }
}
