package io.engram.topology.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.topology.SessionStageFactory;
import java.io.ByteArrayInputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** The CLI without a broker: option handling, exit codes, stdout/stderr separation. */
class EngramCliTest {

    final StringWriter out = new StringWriter();
    final StringWriter err = new StringWriter();

    int run(Map<String, String> env, String... args) {
        CliContext ctx = new CliContext(
                new PrintWriter(out, true),
                new PrintWriter(err, true),
                env,
                new ByteArrayInputStream(new byte[0]),
                false,
                SessionStageFactory.none(),
                new CompletableFuture<>());
        return new EngramCli(ctx).execute(args);
    }

    @Test
    void configListShowsValuesWithTheirSource() {
        int code =
                run(Map.of("ENGRAM_JOB_PARALLELISM", "3"), "config", "list", "--set", "engram.kafka.topic.input=in-x");
        assertThat(code).isZero();
        assertThat(out.toString())
                .contains("engram.job.parallelism (int, > 0)")
                .contains("value: 3 [ENVIRONMENT]")
                .contains("value: in-x [CLI]")
                .contains(
                        "value: engram-answers [DEFAULT]   default: engram-answers   env: ENGRAM_KAFKA_TOPIC_ANSWERS");
        assertThat(err.toString()).isEmpty();
    }

    @Test
    void everyCommandAndSubcommandAnswersHelp() {
        java.util.List<java.util.List<String>> commands = new java.util.ArrayList<>();
        CliContext ctx = new CliContext(
                new PrintWriter(out, true),
                new PrintWriter(err, true),
                Map.of(),
                new ByteArrayInputStream(new byte[0]),
                false,
                SessionStageFactory.none(),
                new CompletableFuture<>());
        collect(new EngramCli(ctx).commandLine(), new java.util.ArrayList<>(), commands);
        assertThat(commands)
                .hasSizeGreaterThan(15)
                .contains(
                        java.util.List.of("state", "inspect"),
                        java.util.List.of("explain"),
                        java.util.List.of("submit"),
                        java.util.List.of("config", "list"));
        for (java.util.List<String> c : commands) {
            out.getBuffer().setLength(0);
            err.getBuffer().setLength(0);
            java.util.List<String> args = new java.util.ArrayList<>(c);
            args.add("--help");
            assertThat(run(Map.of(), args.toArray(String[]::new)))
                    .as("engram %s --help: %s", c, err)
                    .isZero();
            assertThat(out.toString())
                    .as("engram %s --help", c)
                    .startsWith("Usage: engram")
                    .contains("--help");
            assertThat(err.toString()).isEmpty();
        }
    }

    private static void collect(
            picocli.CommandLine command, java.util.List<String> path, java.util.List<java.util.List<String>> into) {
        into.add(java.util.List.copyOf(path));
        command.getSubcommands().forEach((name, sub) -> {
            java.util.List<String> next = new java.util.ArrayList<>(path);
            next.add(name);
            collect(sub, next, into);
        });
    }

    @Test
    void kafkaSecurityPropertiesPassThroughAndSecretsAreNeverShown() {
        int code = run(
                Map.of("ENGRAM_KAFKA_PROPERTIES_SECURITY_PROTOCOL", "SASL_SSL"),
                "config",
                "list",
                "--set",
                "engram.kafka.properties.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
                        + "required username=\"ada\" password=\"hunter2\";",
                "--set",
                "engram.kafka.properties.sasl.mechanism=PLAIN");
        assertThat(code).as(err.toString()).isZero();
        assertThat(out.toString())
                .contains("engram.kafka.properties.security.protocol\n    value: SASL_SSL")
                .contains("engram.kafka.properties.sasl.mechanism\n    value: PLAIN")
                .contains("engram.kafka.properties.sasl.jaas.config\n    value: ****")
                .doesNotContain("hunter2");
        var options = io.engram.topology.EngramOptions.of(Map.of(
                "engram.kafka.properties.ssl.truststore.location",
                "/t.jks",
                "engram.kafka.bootstrap-servers",
                "b:9093"));
        assertThat(io.engram.topology.KafkaOptions.clientProperties(options))
                .containsEntry("ssl.truststore.location", "/t.jks")
                .containsEntry("bootstrap.servers", "b:9093");
        assertThat(run(Map.of(), "config", "list", "--set", "engram.kafka.propertie.x=1"))
                .as("a misspelt prefix is still an unknown option")
                .isEqualTo(ExitCode.INVALID_INPUT.code());
    }

    @Test
    void globalOptionsWorkBeforeTheSubcommandToo() {
        assertThat(run(Map.of(), "--set", "engram.kafka.topic.input=early", "config", "list"))
                .isZero();
        assertThat(out.toString()).contains("value: early [CLI]");
    }

    @Test
    void unknownOptionIsInvalidInput() {
        assertThat(run(Map.of(), "config", "list", "--set", "engram.kafka.topik.input=x"))
                .isEqualTo(ExitCode.INVALID_INPUT.code());
        assertThat(err.toString())
                .contains("unknown option 'engram.kafka.topik.input'")
                .contains("did you mean 'engram.kafka.topic.input'")
                .doesNotContain("at io.engram");
        assertThat(out.toString()).isEmpty();
    }

    @Test
    void badValueAndBadFlagAreInvalidInput() {
        assertThat(run(Map.of("ENGRAM_JOB_PARALLELISM", "zero"), "config", "list"))
                .isEqualTo(ExitCode.INVALID_INPUT.code());
        assertThat(err.toString()).contains("ENGRAM_JOB_PARALLELISM").contains("'zero'");
        assertThat(run(Map.of(), "produce", "--no-such-flag")).isEqualTo(ExitCode.INVALID_INPUT.code());
        assertThat(run(Map.of())).isEqualTo(ExitCode.INVALID_INPUT.code());
    }

    @Test
    void runWithoutASessionStageIsUnavailableAndStartsNothing() {
        assertThat(run(Map.of(), "run")).isEqualTo(ExitCode.UNAVAILABLE.code());
        assertThat(err.toString()).contains("no session stage");
        assertThat(out.toString()).isEmpty();
    }

    @Test
    void produceOfAMissingFileIsInvalidInput() {
        assertThat(run(Map.of(), "produce", "-s", "s1", "/no/such/file.txt")).isEqualTo(ExitCode.INVALID_INPUT.code());
        assertThat(err.toString()).contains("no such file: /no/such/file.txt");
    }
}
