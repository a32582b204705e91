package io.engram.topology;

import io.engram.topology.cli.CliOptions;
import io.engram.topology.cli.ClusterOptions;
import io.engram.topology.embedded.EmbeddedOptions;
import io.engram.topology.options.Option;
import io.engram.topology.options.ResolvedOptions;
import io.engram.topology.queries.QueryOptions;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/** Every option Engram declares, collected from the {@code XxxOptions} classes' constants. */
public final class EngramOptions {

    private static final List<Class<?>> HOLDERS = List.of(
            KafkaOptions.class,
            JobOptions.class,
            EngineOptions.class,
            MemoryOptions.class,
            AttributionOptions.class,
            QueryOptions.class,
            EmbeddedOptions.class,
            CliOptions.class,
            ClusterOptions.class);

    private static final List<Option<?>> ALL = collect();

    private EngramOptions() {}

    /** All declared options, sorted by key. */
    public static List<Option<?>> all() {
        return ALL;
    }

    /** Defaults, overridden by {@code values} (as if given on the command line); no environment, no file. */
    public static ResolvedOptions of(Map<String, String> values) {
        return ResolvedOptions.resolve(ALL, values, Map.of(), Map.of(), "(none)");
    }

    /** Resolution for a real process: flags, the process environment, then the config file. */
    public static ResolvedOptions resolve(Map<String, String> cli, Map<String, String> env, Path configFile) {
        return ResolvedOptions.resolve(ALL, cli, env, configFile);
    }

    private static List<Option<?>> collect() {
        List<Option<?>> out = new ArrayList<>();
        for (Class<?> holder : HOLDERS) {
            for (Field f : holder.getDeclaredFields()) {
                int m = f.getModifiers();
                if (Modifier.isStatic(m) && Modifier.isPublic(m) && Option.class.isAssignableFrom(f.getType())) {
                    try {
                        out.add((Option<?>) f.get(null));
                    } catch (IllegalAccessException e) {
                        throw new IllegalStateException("cannot read option constant " + f, e);
                    }
                }
            }
        }
        out.sort(Comparator.comparing(Option::key));
        return List.copyOf(out);
    }
}
