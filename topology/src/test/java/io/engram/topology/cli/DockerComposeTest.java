package io.engram.topology.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.topology.EngineOptions;
import io.engram.topology.EngramOptions;
import io.engram.topology.JobOptions;
import io.engram.topology.KafkaOptions;
import io.engram.topology.SessionStageFactory;
import io.engram.topology.options.Option;
import io.engram.topology.options.ResolvedOptions;
import java.io.ByteArrayInputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;
import picocli.CommandLine;

/**
 * docker/ cannot drift from the code: every {@code engram.*} option and {@code ENGRAM_*} variable the compose file
 * passes exists, the init service's options resolve (required ones present) and its engram command parses, and the
 * Flink, Kafka and Prometheus settings agree with each other.
 */
class DockerComposeTest {

    static final Path DOCKER = Path.of("..", "docker");
    /** Variables of the image and the launcher, not options. */
    static final Set<String> NOT_OPTIONS = Set.of("ENGRAM_JVM_FLAGS", "ENGRAM_JAVA_OPTS", "ENGRAM_CONFIG");

    static final Pattern VARIABLE = Pattern.compile("\\$\\{([A-Z0-9_]+)(:-([^}]*))?}");
    static final Pattern OPTION_KEY = Pattern.compile("(?<![\\w.-])engram\\.[a-z0-9.-]*[a-z0-9]");

    final Map<String, Object> compose = load(DOCKER.resolve("docker-compose.yml"));
    final Map<String, Object> services = map(compose.get("services"));
    final Map<String, Object> flink = load(DOCKER.resolve("flink").resolve("config.yaml"));

    @Test
    void everyEngramOptionAndVariableInTheComposeFileExists() throws Exception {
        Set<String> keys = EngramOptions.all().stream().map(Option::key).collect(Collectors.toSet());
        Set<String> envVars = EngramOptions.all().stream().map(Option::envVar).collect(Collectors.toSet());
        Set<String> usedKeys = new TreeSet<>();
        Matcher m = OPTION_KEY.matcher(Files.readString(DOCKER.resolve("docker-compose.yml")));
        while (m.find()) {
            usedKeys.add(m.group());
        }
        assertThat(usedKeys).as("engram.* option keys in docker-compose.yml").isSubsetOf(keys);
        for (var service : services.entrySet()) {
            for (String var : environment(service.getValue()).keySet()) {
                if (var.startsWith("ENGRAM_") && !NOT_OPTIONS.contains(var)) {
                    assertThat(envVars)
                            .as("%s sets %s: no option reads it (engram config list)", service.getKey(), var)
                            .contains(var);
                }
            }
        }
    }

    @Test
    void publishedPortsBindToLoopbackByDefaultAndLongLivedServicesRestart() {
        // Flink's REST API takes jar uploads (code execution): never on 0.0.0.0 unless the user says so
        for (Map.Entry<String, Object> e : services.entrySet()) {
            Object ports = map(e.getValue()).get("ports");
            if (ports == null) {
                continue;
            }
            for (Object port : (List<?>) ports) {
                Matcher m = VARIABLE.matcher(String.valueOf(port));
                assertThat(m.lookingAt() && m.group(1).endsWith("_BIND") && "127.0.0.1".equals(m.group(3)))
                        .as("service %s publishes %s: bind it to ${X_BIND:-127.0.0.1}", e.getKey(), port)
                        .isTrue();
            }
        }
        assertThat(map(services.get("jobmanager")).get("restart")).isEqualTo("unless-stopped");
        assertThat(String.valueOf(map(services.get("engram-init")).get("restart")))
                .startsWith("on-failure");
    }

    @Test
    void everyVariableHasADefaultSoComposeRunsWithoutAnEnvFile() throws Exception {
        Matcher m = VARIABLE.matcher(Files.readString(DOCKER.resolve("docker-compose.yml")));
        List<String> withoutDefault = new ArrayList<>();
        int seen = 0;
        while (m.find()) {
            seen++;
            if (m.group(2) == null) {
                withoutDefault.add(m.group(1));
            }
        }
        assertThat(seen).as("variables found").isPositive();
        assertThat(withoutDefault).as("${VAR} without :-default").isEmpty();
    }

    @Test
    void initServiceResolvesItsOptionsAndItsCommandParses() {
        Map<String, Object> init = map(services.get("engram-init"));
        Map<String, String> env = environment(init);
        ResolvedOptions options = EngramOptions.resolve(Map.of(), env, null);

        // required by engram submit: the model folder, under the models volume the TaskManagers mount too
        Path model =
                options.find(EngineOptions.MODEL_DIR).orElseThrow(() -> new AssertionError("engram.model.dir unset"));
        String modelsMount = mountTarget(init, "/models");
        assertThat(model.startsWith(modelsMount))
                .as("%s under the models volume %s", model, modelsMount)
                .isTrue();
        assertThat(mountTarget(map(services.get("taskmanager-1")), "/models")).isEqualTo(modelsMount);

        // the brokers, the JobManager and the replication the compose file runs
        List<String> brokers = services.keySet().stream()
                .filter(s -> s.startsWith("kafka-"))
                .sorted()
                .toList();
        assertThat(brokers).hasSize(3);
        assertThat(options.get(KafkaOptions.BOOTSTRAP_SERVERS).split(","))
                .containsExactlyElementsOf(
                        brokers.stream().map(b -> b + ":9092").toList());
        for (String b : brokers) {
            Map<String, String> kafka = environment(services.get(b));
            assertThat(kafka.get("KAFKA_ADVERTISED_LISTENERS")).isEqualTo("PLAINTEXT://" + b + ":9092");
            assertThat(kafka.get("KAFKA_CONTROLLER_QUORUM_VOTERS").split(",")).hasSize(3);
            assertThat(Integer.parseInt(kafka.get("KAFKA_DEFAULT_REPLICATION_FACTOR")))
                    .isEqualTo(3);
            assertThat(Integer.parseInt(kafka.get("KAFKA_MIN_INSYNC_REPLICAS"))).isEqualTo(2);
            assertThat(Integer.parseInt(kafka.get("KAFKA_TRANSACTION_MAX_TIMEOUT_MS")))
                    .as("broker's transaction.max.timeout.ms >= engram.kafka.transaction-timeout")
                    .isGreaterThanOrEqualTo(
                            (int) options.get(KafkaOptions.TRANSACTION_TIMEOUT).toMillis());
        }
        assertThat(options.get(KafkaOptions.REPLICATION_FACTOR)).isEqualTo(3);
        URI jm = URI.create(options.get(ClusterOptions.JOBMANAGER));
        assertThat(services).containsKey(jm.getHost());
        assertThat(jm.getPort()).isEqualTo(((Number) flink.get("rest.port")).intValue());
        assertThat(options.get(JobOptions.CHECKPOINT_DIR)).isEqualTo(flink.get("execution.checkpointing.dir"));

        // the entrypoint's init role runs `engram <rest>`: it must be a valid engram submit command line
        List<String> command = strings(init.get("command"));
        assertThat(command.get(0)).isEqualTo("init");
        CliContext ctx = new CliContext(
                new PrintWriter(new StringWriter()),
                new PrintWriter(new StringWriter()),
                env,
                new ByteArrayInputStream(new byte[0]),
                false,
                SessionStageFactory.none(),
                new CompletableFuture<>());
        CommandLine.ParseResult parsed = new EngramCli(ctx)
                .commandLine()
                .parseArgs(command.subList(1, command.size()).toArray(String[]::new));
        assertThat(parsed.subcommand().commandSpec().name()).isEqualTo("submit");
        // the entrypoint's `engram status | awk '$2 == "RUNNING"'` and `engram topics create` exist too
        assertThat(new EngramCli(ctx).commandLine().getSubcommands()).containsKeys("status", "topics", "submit");
    }

    @Test
    void taskManagersHaveTheGpuAndFlinkJvmsTheFlagsOfTheImage() throws Exception {
        for (String tm : services.keySet().stream()
                .filter(s -> s.startsWith("taskmanager-"))
                .toList()) {
            Map<String, Object> service = map(services.get(tm));
            List<String> command = strings(service.get("command"));
            assertThat(command)
                    .as("%s command", tm)
                    .startsWith("taskmanager")
                    .contains(
                            "-Dexternal-resources=gpu",
                            "-Dexternal-resource.gpu.amount=1",
                            "-Dexternal-resource.gpu.driver-factory.class=org.apache.flink.externalresource.gpu.GPUDriverFactory",
                            "-Dexternal-resource.gpu.param.discovery-script.path="
                                    + "plugins/external-resource-gpu/nvidia-gpu-discovery.sh");
            Map<String, Object> device = map(
                    list(map(map(map(service.get("deploy")).get("resources")).get("reservations"))
                                    .get("devices"))
                            .get(0));
            assertThat(device.get("driver")).isEqualTo("nvidia");
            assertThat(strings(device.get("capabilities"))).contains("gpu");
            assertThat(mountTarget(service, "/engram-state")).isEqualTo("/engram-state");
        }
        String dockerfile = Files.readString(DOCKER.resolve("Dockerfile"));
        Matcher flags = Pattern.compile("ENGRAM_JVM_FLAGS=\"([^\"]+)\"").matcher(dockerfile);
        assertThat(flags.find()).as("ENGRAM_JVM_FLAGS in the Dockerfile").isTrue();
        Set<String> imageFlags = Set.of(flags.group(1).split(" "));
        assertThat(Set.of(((String) flink.get("env.java.opts.all")).split(" ")))
                .as("env.java.opts.all in flink/config.yaml = ENGRAM_JVM_FLAGS of the image")
                .isEqualTo(imageFlags)
                .contains(
                        "--add-modules",
                        "jdk.incubator.vector",
                        "-Dorg.apache.avro.SERIALIZABLE_PACKAGES=io.engram.schemas");
        assertThat(dockerfile).contains("ARG FLINK_VERSION=2.2.1").contains("/opt/flink/usrlib/engram.jar");
    }

    @Test
    void prometheusScrapesTheReporterOfServicesThatExist() {
        Map<String, Object> prometheus = load(DOCKER.resolve("prometheus.yml"));
        int port = ((Number) flink.get("metrics.reporter.prom.port")).intValue();
        assertThat(flink.get("metrics.reporter.prom.factory.class"))
                .isEqualTo("org.apache.flink.metrics.prometheus.PrometheusReporterFactory");
        List<String> targets = new ArrayList<>();
        for (Object job : list(prometheus.get("scrape_configs"))) {
            for (Object config : list(map(job).get("static_configs"))) {
                targets.addAll(strings(map(config).get("targets")));
            }
        }
        assertThat(targets)
                .contains("jobmanager:" + port, "taskmanager-1:" + port)
                .allSatisfy(t -> {
                    assertThat(services).containsKey(t.substring(0, t.indexOf(':')));
                    assertThat(t).endsWith(":" + port);
                });
    }

    /** The service's environment with ${VAR:-default} replaced by the default, as compose does without a .env file. */
    static Map<String, String> environment(Object service) {
        Object env = map(service).get("environment");
        Map<String, String> out = new LinkedHashMap<>();
        if (env == null) {
            return out;
        }
        for (var e : map(env).entrySet()) {
            out.put(e.getKey(), interpolate(String.valueOf(e.getValue())));
        }
        return out;
    }

    /** The container path of the volume whose target is {@code target}, interpolated. */
    static String mountTarget(Map<String, Object> service, String target) {
        return strings(service.get("volumes")).stream()
                .map(DockerComposeTest::interpolate)
                .map(v -> v.split(":")[1])
                .filter(t -> t.equals(target))
                .findFirst()
                .orElseThrow(
                        () -> new AssertionError("no volume mounted at " + target + " in " + service.get("volumes")));
    }

    static String interpolate(String s) {
        Matcher m = VARIABLE.matcher(s);
        StringBuilder sb = new StringBuilder();
        while (m.find()) {
            m.appendReplacement(sb, Matcher.quoteReplacement(m.group(3) == null ? "" : m.group(3)));
        }
        return m.appendTail(sb).toString();
    }

    static Map<String, Object> load(Path file) {
        try {
            Map<String, Object> doc = new Yaml().load(Files.readString(file));
            assertThat(doc).as("%s is a YAML mapping", file).isNotNull();
            return doc;
        } catch (java.io.IOException e) {
            throw new AssertionError("cannot read " + file, e);
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o) {
        assertThat(o).isInstanceOf(Map.class);
        return (Map<String, Object>) o;
    }

    static List<?> list(Object o) {
        assertThat(o).isInstanceOf(List.class);
        return (List<?>) o;
    }

    static List<String> strings(Object o) {
        return list(o).stream().map(String::valueOf).toList();
    }
}
