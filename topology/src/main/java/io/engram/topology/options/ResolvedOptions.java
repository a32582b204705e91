package io.engram.topology.options;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.TreeMap;

/**
 * The value of every declared {@link Option}, resolved once with the precedence CLI flag &gt; environment &gt; config file
 * &gt; default, and validated. Immutable and thread-safe; the only place Engram reads its environment.
 *
 * <p>Unknown keys given on the command line or in the file fail with a {@link ConfigException} that suggests the
 * nearest declared key; environment variables are looked up per declared option, so unrelated ones are ignored.
 *
 * <p>Keys under {@value #KAFKA_PROPERTIES} are passed to every Kafka client as they are (security settings: SASL, TLS),
 * from the command line, the config file or environment variables {@code ENGRAM_KAFKA_PROPERTIES_SASL_MECHANISM}
 * (underscores become dots); {@link #kafkaProperties()} has them, and {@link #isSecret} says which values never to show.
 */
public final class ResolvedOptions {

    /** Environment variable naming the config file when {@code --config} is not given. */
    public static final String CONFIG_FILE_ENV = "ENGRAM_CONFIG";

    /** Prefix of Kafka client properties passed through as they are. */
    public static final String KAFKA_PROPERTIES = "engram.kafka.properties.";

    private static final String KAFKA_PROPERTIES_ENV = "ENGRAM_KAFKA_PROPERTIES_";

    private record Value(Object value, String raw, OptionSource source) {}

    private final Map<String, Option<?>> declared;
    private final Map<String, String> cli;
    private final Map<String, String> env;
    private final Map<String, String> file;
    private final String fileName;
    private final Map<String, Value> values = new LinkedHashMap<>();

    private ResolvedOptions(
            Collection<Option<?>> declared,
            Map<String, String> cli,
            Map<String, String> env,
            Map<String, String> file,
            String fileName) {
        Map<String, Option<?>> byKey = new TreeMap<>();
        for (Option<?> o : declared) {
            if (byKey.put(o.key(), o) != null) {
                throw new IllegalArgumentException("option " + o.key() + " is declared twice");
            }
        }
        this.declared = byKey;
        this.cli = Map.copyOf(cli);
        this.env = Map.copyOf(env);
        this.file = Map.copyOf(file);
        this.fileName = fileName;
        requireKnown(cli.keySet(), "the command line");
        requireKnown(file.keySet(), "config file " + fileName);
        for (Option<?> o : byKey.values()) {
            values.put(o.key(), resolveOne(o));
        }
    }

    /**
     * Resolves every option in {@code declared}.
     *
     * @param cli values from flags ({@code --set key=value}), by key
     * @param env the process environment (only {@link Option#envVar()} names are read)
     * @param file values from the config file, by key; {@code fileName} names it in messages
     * @throws ConfigException on an unknown key or a value that does not parse or is out of range
     */
    public static ResolvedOptions resolve(
            Collection<Option<?>> declared,
            Map<String, String> cli,
            Map<String, String> env,
            Map<String, String> file,
            String fileName) {
        return new ResolvedOptions(declared, cli, env, file, fileName);
    }

    /**
     * Resolves with the config file named by {@code configFile}, or else by {@value #CONFIG_FILE_ENV} in {@code env}, or
     * none.
     */
    public static ResolvedOptions resolve(
            Collection<Option<?>> declared, Map<String, String> cli, Map<String, String> env, Path configFile) {
        Path path = configFile != null
                ? configFile
                : env.containsKey(CONFIG_FILE_ENV) ? Path.of(env.get(CONFIG_FILE_ENV)) : null;
        return path == null
                ? resolve(declared, cli, env, Map.of(), "(none)")
                : resolve(declared, cli, env, loadProperties(path), path.toString());
    }

    /** The same inputs with {@code overrides} added to (and winning over) the command-line values. */
    public ResolvedOptions with(Map<String, String> overrides) {
        Map<String, String> merged = new LinkedHashMap<>(cli);
        merged.putAll(overrides);
        return new ResolvedOptions(declared.values(), merged, env, file, fileName);
    }

    /**
     * @throws ConfigException if the option is not set and has no default, naming the three ways to set it
     * @throws IllegalArgumentException if the option was not declared to this resolver (a programming error)
     */
    public <T> T get(Option<T> option) {
        return find(option)
                .orElseThrow(() -> new ConfigException(
                        "%s is required and has no default: pass --set %s=..., set %s, or put it in the config file"
                                .formatted(option.key(), option.key(), option.envVar())));
    }

    /** The value, or empty when the option has no default and nobody set it. */
    @SuppressWarnings("unchecked")
    public <T> Optional<T> find(Option<T> option) {
        Value v = values.get(option.key());
        if (v == null) {
            throw new IllegalArgumentException("option " + option.key() + " was not declared to this resolver");
        }
        return Optional.ofNullable((T) v.value());
    }

    /** Where the value of {@code option} came from. */
    public OptionSource source(Option<?> option) {
        Value v = values.get(option.key());
        if (v == null) {
            throw new IllegalArgumentException("option " + option.key() + " was not declared to this resolver");
        }
        return v.source();
    }

    /**
     * The Kafka client properties passed through ({@value #KAFKA_PROPERTIES}{@code name=value}), by Kafka name, with the
     * usual precedence: command line over environment over config file.
     */
    public Map<String, String> kafkaProperties() {
        Map<String, String> out = new TreeMap<>();
        file.forEach((k, v) -> {
            if (k.startsWith(KAFKA_PROPERTIES)) {
                out.put(k.substring(KAFKA_PROPERTIES.length()), v);
            }
        });
        env.forEach((k, v) -> {
            if (k.startsWith(KAFKA_PROPERTIES_ENV) && k.length() > KAFKA_PROPERTIES_ENV.length()) {
                out.put(
                        k.substring(KAFKA_PROPERTIES_ENV.length())
                                .toLowerCase(java.util.Locale.ROOT)
                                .replace('_', '.'),
                        v);
            }
        });
        cli.forEach((k, v) -> {
            if (k.startsWith(KAFKA_PROPERTIES)) {
                out.put(k.substring(KAFKA_PROPERTIES.length()), v);
            }
        });
        return out;
    }

    /** Whether a Kafka property's value is a secret (passwords, keys, JAAS configs): shown as {@code ****}. */
    public static boolean isSecret(String kafkaName) {
        String n = kafkaName.toLowerCase(java.util.Locale.ROOT);
        return n.contains("password")
                || n.contains("jaas")
                || n.contains("secret")
                || n.endsWith(".key")
                || n.contains("token")
                || n.contains("credential");
    }

    /** Every declared option, sorted by key. */
    public List<Option<?>> options() {
        return List.copyOf(declared.values());
    }

    /** The value as a user would write it, or empty when unset. */
    public <T> String formatted(Option<T> option) {
        return find(option).map(option::format).orElse("");
    }

    private <T> Value resolveOne(Option<T> o) {
        if (cli.containsKey(o.key())) {
            String raw = cli.get(o.key());
            return new Value(o.parse(raw, "the command line"), raw, OptionSource.CLI);
        }
        if (env.containsKey(o.envVar())) {
            String raw = env.get(o.envVar());
            return new Value(o.parse(raw, "environment variable " + o.envVar()), raw, OptionSource.ENVIRONMENT);
        }
        if (file.containsKey(o.key())) {
            String raw = file.get(o.key());
            return new Value(o.parse(raw, "config file " + fileName), raw, OptionSource.CONFIG_FILE);
        }
        return new Value(o.defaultValue(), o.format(o.defaultValue()), OptionSource.DEFAULT);
    }

    private void requireKnown(Collection<String> keys, String origin) {
        for (String key : keys) {
            if (key.startsWith(KAFKA_PROPERTIES) && key.length() > KAFKA_PROPERTIES.length()) {
                continue;
            }
            if (!declared.containsKey(key)) {
                String nearest = declared.keySet().stream()
                        .min(Comparator.comparingInt(k -> editDistance(k, key)))
                        .orElse("");
                throw new ConfigException("unknown option '%s' in %s; did you mean '%s'? (engram config list shows all)"
                        .formatted(key, origin, nearest));
            }
        }
    }

    /** Levenshtein distance, for "did you mean". */
    static int editDistance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int subst = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                cur[j] = Math.min(subst, Math.min(prev[j] + 1, cur[j - 1] + 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    /** Reads a Java properties file (UTF-8) into a map. */
    public static Map<String, String> loadProperties(Path path) {
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(path, StandardCharsets.UTF_8)) {
            p.load(r);
        } catch (NoSuchFileException e) {
            throw new ConfigException("config file " + path + " does not exist", e);
        } catch (IOException | IllegalArgumentException e) {
            throw new ConfigException("cannot read config file " + path + ": " + e.getMessage(), e);
        }
        Map<String, String> out = new TreeMap<>();
        p.stringPropertyNames().forEach(k -> out.put(k, p.getProperty(k)));
        return out;
    }
}
