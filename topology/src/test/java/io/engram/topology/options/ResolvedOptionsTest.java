package io.engram.topology.options;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ResolvedOptionsTest {

    static final Option<Integer> SIZE = Option.intKey("engram.test.block-size")
            .defaultValue(128)
            .check(v -> v > 0 && Integer.bitCount(v) == 1, "a power of two")
            .description("Tokens per block.");
    static final Option<Duration> WAIT = Option.durationKey("engram.test.wait")
            .defaultValue(Duration.ofSeconds(2))
            .description("How long.");
    static final Option<String> NAME =
            Option.stringKey("engram.test.name").noDefault().description("A name.");
    static final List<Option<?>> ALL = List.of(SIZE, WAIT, NAME);

    @Test
    void precedenceIsCliThenEnvironmentThenFileThenDefault() {
        Map<String, String> file =
                Map.of("engram.test.block-size", "16", "engram.test.wait", "5s", "engram.test.name", "file");
        Map<String, String> env = Map.of("ENGRAM_TEST_BLOCK_SIZE", "32", "ENGRAM_TEST_NAME", "env", "UNRELATED", "x");
        Map<String, String> cli = Map.of("engram.test.block-size", "64");

        ResolvedOptions r = ResolvedOptions.resolve(ALL, cli, env, file, "f.properties");
        assertThat(r.get(SIZE)).isEqualTo(64);
        assertThat(r.source(SIZE)).isEqualTo(OptionSource.CLI);
        assertThat(r.get(NAME)).isEqualTo("env");
        assertThat(r.source(NAME)).isEqualTo(OptionSource.ENVIRONMENT);
        assertThat(r.get(WAIT)).isEqualTo(Duration.ofSeconds(5));
        assertThat(r.source(WAIT)).isEqualTo(OptionSource.CONFIG_FILE);

        ResolvedOptions defaults = ResolvedOptions.resolve(ALL, Map.of(), Map.of(), Map.of(), "(none)");
        assertThat(defaults.get(SIZE)).isEqualTo(128);
        assertThat(defaults.source(SIZE)).isEqualTo(OptionSource.DEFAULT);
        assertThat(defaults.find(NAME)).isEmpty();
    }

    @Test
    void badValuesNameKeyValueOriginAndRange() {
        assertThatThrownBy(() ->
                        ResolvedOptions.resolve(ALL, Map.of(), Map.of("ENGRAM_TEST_BLOCK_SIZE", "100"), Map.of(), "-"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("engram.test.block-size")
                .hasMessageContaining("'100'")
                .hasMessageContaining("ENGRAM_TEST_BLOCK_SIZE")
                .hasMessageContaining("a power of two");
        assertThatThrownBy(
                        () -> ResolvedOptions.resolve(ALL, Map.of("engram.test.wait", "soon"), Map.of(), Map.of(), "-"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("not a valid duration");
    }

    @Test
    void unknownKeysAreRefusedWithASuggestion(@TempDir Path dir) throws Exception {
        assertThatThrownBy(() ->
                        ResolvedOptions.resolve(ALL, Map.of("engram.test.block-sise", "8"), Map.of(), Map.of(), "-"))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("did you mean 'engram.test.block-size'");
        Path file = dir.resolve("engram.properties");
        Files.writeString(file, "engram.test.nmae=x\n");
        assertThatThrownBy(() -> ResolvedOptions.resolve(ALL, Map.of(), Map.of(), file))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(file.toString());
    }

    @Test
    void configFileComesFromTheFlagOrTheEnvironment(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("engram.properties");
        Files.writeString(file, "engram.test.name=from-file\n");
        assertThat(ResolvedOptions.resolve(ALL, Map.of(), Map.of(), file).get(NAME))
                .isEqualTo("from-file");
        assertThat(ResolvedOptions.resolve(ALL, Map.of(), Map.of("ENGRAM_CONFIG", file.toString()), null)
                        .get(NAME))
                .isEqualTo("from-file");
        assertThatThrownBy(() -> ResolvedOptions.resolve(ALL, Map.of(), Map.of(), dir.resolve("missing")))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("does not exist");
    }

    @Test
    void requiredOptionsSayHowToSetThem() {
        ResolvedOptions r = ResolvedOptions.resolve(ALL, Map.of(), Map.of(), Map.of(), "-");
        assertThatThrownBy(() -> r.get(NAME))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining("--set engram.test.name=")
                .hasMessageContaining("ENGRAM_TEST_NAME");
        assertThat(r.with(Map.of("engram.test.name", "late")).get(NAME)).isEqualTo("late");
    }

    @Test
    void declarationsAreChecked() {
        assertThatThrownBy(() -> Option.intKey("Engram.Bad_Key")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Option.intKey("engram.x")
                        .defaultValue(3)
                        .check(v -> v > 5, "> 5")
                        .description("d"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("default");
        assertThatThrownBy(() -> Option.intKey("engram.x").description("d")).isInstanceOf(IllegalStateException.class);
        assertThat(SIZE.envVar()).isEqualTo("ENGRAM_TEST_BLOCK_SIZE");
    }

    @Test
    void durationsParseAndPrintBothWays() {
        for (String s : List.of("500ms", "2s", "10min", "1h", "1d")) {
            assertThat(Option.formatDuration(Option.parseDuration(s))).isEqualTo(s);
        }
        assertThat(Option.parseDuration("PT3S")).isEqualTo(Duration.ofSeconds(3));
    }
}
