package io.engram.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessSpec;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessUtils;
import org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint;
import org.apache.flink.runtime.jobmanager.JobManagerProcessSpec;
import org.apache.flink.runtime.jobmanager.JobManagerProcessUtils;
import org.apache.flink.runtime.taskexecutor.TaskManagerRunner;
import org.apache.flink.runtime.util.config.memory.ProcessMemoryUtils;

/**
 * A Flink standalone session cluster of separate JVM processes on loopback: one JobManager
 * ({@link StandaloneSessionClusterEntrypoint}) and TaskManagers ({@link TaskManagerRunner}) started and killed at will.
 * Each JVM is the running JDK's {@code java} with the test's classpath, the JVM flags of the Docker deployment
 * ({@code env.java.opts.all} in docker/flink/config.yaml) and the memory flags Flink's start scripts would compute
 * ({@code BashJavaUtils} does the same with the same utilities). The configuration directory, checkpoints and one log
 * file per process live under the cluster's directory.
 *
 * <p>Classes resolve parent-first: the job's code is also on every process's classpath (the test's), and loading
 * kafka-clients child-first from the uploaded jar while the Kafka connector (an {@code org.apache.flink} class, always
 * parent-first) links against the parent's copy would give two {@code ProducerRecord} classes. Not thread-safe;
 * {@link #close()} kills every process still alive.
 */
final class FlinkProcessCluster implements AutoCloseable {

    private static final String HOST = "127.0.0.1";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final Path confDir;
    private final Map<String, String> settings;
    private final List<String> jvmFlags;
    private final int restPort;
    private final Map<String, Node> nodes = new LinkedHashMap<>();
    private final java.util.Set<String> killed = new java.util.HashSet<>();
    /** Kills what is still running when the test JVM exits without {@link #close()} (e.g. a Failsafe timeout). */
    private final Thread reaper = new Thread(this::destroyAll, "flink-process-reaper");

    private final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    /** One started JVM: its role name (jobmanager, tm-1, ...), process and log files. */
    record Node(String name, Process process, Path log, Path out) {}

    private FlinkProcessCluster(Path dir, Map<String, String> settings, List<String> jvmFlags, int restPort)
            throws IOException {
        this.dir = dir;
        this.confDir = Files.createDirectories(dir.resolve("conf"));
        this.settings = settings;
        this.jvmFlags = jvmFlags;
        this.restPort = restPort;
        StringBuilder yaml = new StringBuilder("# written by FlinkProcessCluster\n");
        settings.forEach((k, v) -> yaml.append(k).append(": ").append(v).append('\n'));
        Files.writeString(confDir.resolve("config.yaml"), yaml);
        Files.writeString(confDir.resolve("log4j.properties"), """
                rootLogger.level = INFO
                rootLogger.appenderRef.file.ref = file
                appender.file.type = File
                appender.file.name = file
                appender.file.fileName = ${sys:log.file}
                appender.file.layout.type = PatternLayout
                appender.file.layout.pattern = %d{HH:mm:ss.SSS} %-5p %c{1.} - %m%n
                logger.kafka.name = org.apache.kafka
                logger.kafka.level = WARN
                logger.pekko.name = org.apache.pekko
                logger.pekko.level = WARN
                """);
        Files.writeString(confDir.resolve("classpath.args"), "-cp \"" + classpath() + "\"\n");
        Runtime.getRuntime().addShutdownHook(reaper);
    }

    /**
     * Writes the configuration under {@code dir} and starts the JobManager and {@code taskManagers} TaskManagers
     * (named tm-1, tm-2, ...) without waiting for them; {@link #awaitTaskManagers} waits.
     *
     * @param extra Flink settings added last (they win)
     */
    static FlinkProcessCluster start(Path dir, int taskManagers, Map<String, String> extra) throws IOException {
        Map<String, String> s = new LinkedHashMap<>();
        int restPort = freePort();
        s.put("jobmanager.rpc.address", HOST);
        s.put("jobmanager.bind-host", HOST);
        s.put("jobmanager.rpc.port", String.valueOf(freePort()));
        s.put("rest.address", HOST);
        s.put("rest.bind-address", HOST);
        s.put("rest.port", String.valueOf(restPort));
        s.put("blob.server.port", String.valueOf(freePort()));
        s.put("taskmanager.host", HOST);
        s.put("taskmanager.bind-host", HOST);
        s.put("taskmanager.rpc.port", "0");
        s.put("taskmanager.data.port", "0");
        s.put("taskmanager.numberOfTaskSlots", "2");
        // spread a job's slots over the TaskManagers instead of filling the first one (Flink's default)
        s.put("taskmanager.load-balance.mode", "SLOTS");
        s.put("parallelism.default", "2");
        // small enough that three Flink JVMs and the test JVM fit on a 2-core / 24 GiB machine
        s.put("jobmanager.memory.process.size", "1024m");
        s.put("taskmanager.memory.process.size", "1600m");
        s.put("taskmanager.memory.managed.size", "128m");
        s.put("taskmanager.memory.network.min", "64m");
        s.put("taskmanager.memory.network.max", "64m");
        s.put("taskmanager.memory.jvm-metaspace.size", "384m");
        s.put("state.backend.type", "rocksdb");
        s.put("execution.checkpointing.dir", dir.resolve("checkpoints").toUri().toString());
        s.put(
                "execution.checkpointing.savepoint-dir",
                dir.resolve("savepoints").toUri().toString());
        s.put("execution.checkpointing.interval", "1s");
        s.put("restart-strategy.type", "fixed-delay");
        s.put("restart-strategy.fixed-delay.attempts", "100");
        s.put("restart-strategy.fixed-delay.delay", "1s");
        // a killed TaskManager is declared lost within seconds (default: 50 s without heartbeat)
        s.put("heartbeat.interval", "1s");
        s.put("heartbeat.timeout", "5s");
        s.put("classloader.resolve-order", "parent-first");
        s.put("io.tmp.dirs", dir.resolve("tmp").toString());
        s.putAll(extra);
        Files.createDirectories(dir.resolve("tmp"));
        FlinkProcessCluster cluster = new FlinkProcessCluster(dir, s, deploymentJvmFlags(), restPort);
        try {
            cluster.startJobManager();
            for (int i = 1; i <= taskManagers; i++) {
                cluster.startTaskManager("tm-" + i);
            }
        } catch (IOException | RuntimeException e) {
            cluster.close();
            throw e;
        }
        return cluster;
    }

    /** The REST endpoint, e.g. {@code http://127.0.0.1:PORT}, as {@code engram submit --jobmanager} takes it. */
    URI restAddress() {
        return URI.create("http://" + HOST + ":" + restPort);
    }

    Path dir() {
        return dir;
    }

    private void startJobManager() throws IOException {
        JobManagerProcessSpec spec = JobManagerProcessUtils.processSpecFromConfig(Configuration.fromMap(settings));
        List<String> memory =
                split(JobManagerProcessUtils.generateJvmParametersStr(spec, Configuration.fromMap(settings)));
        launch("jobmanager", memory, StandaloneSessionClusterEntrypoint.class, List.of());
    }

    /** Starts one more TaskManager with resource id {@code name}; it registers with the JobManager on its own. */
    void startTaskManager(String name) throws IOException {
        if (nodes.containsKey(name)) {
            throw new IllegalArgumentException("a process named " + name + " was already started");
        }
        TaskExecutorProcessSpec spec = TaskExecutorProcessUtils.processSpecFromConfig(Configuration.fromMap(settings));
        List<String> memory = split(ProcessMemoryUtils.generateJvmParametersStr(spec));
        List<String> args = new ArrayList<>(split(TaskExecutorProcessUtils.generateDynamicConfigsStr(spec)));
        args.addAll(List.of("-D", "taskmanager.resource-id=" + name));
        launch(name, memory, TaskManagerRunner.class, args);
    }

    private void launch(String name, List<String> memoryFlags, Class<?> main, List<String> args) throws IOException {
        Path log = dir.resolve(name + ".log");
        Path out = dir.resolve(name + ".out");
        Path tmp = Files.createDirectories(dir.resolve("tmp").resolve(name));
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvmFlags);
        cmd.addAll(memoryFlags);
        cmd.add("-Djava.io.tmpdir=" + tmp);
        cmd.add("-Dlog.file=" + log);
        cmd.add("-Dlog4j.configurationFile="
                + confDir.resolve("log4j.properties").toUri());
        cmd.add("@" + confDir.resolve("classpath.args"));
        cmd.add(main.getName());
        cmd.add("--configDir");
        cmd.add(confDir.toString());
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd)
                .redirectErrorStream(true)
                .redirectOutput(out.toFile())
                .start();
        synchronized (this) {
            nodes.put(name, new Node(name, p, log, out));
        }
    }

    /** SIGKILL ({@link Process#destroyForcibly()}) of the process {@code name}; waits until it is gone. */
    void kill(String name) throws InterruptedException {
        Process p = node(name).process();
        killed.add(name);
        p.destroyForcibly();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            throw new IllegalStateException(name + " (pid " + p.pid() + ") still alive 30 s after SIGKILL");
        }
    }

    Node node(String name) {
        Node n = nodes.get(name);
        if (n == null) {
            throw new IllegalArgumentException("no process " + name + "; started: " + nodes.keySet());
        }
        return n;
    }

    /** Polls the REST API until {@code n} TaskManagers are registered; fails naming dead processes. */
    void awaitTaskManagers(int n, Duration timeout) throws InterruptedException {
        boolean ok = KafkaBroker.await(
                () -> {
                    requireAlive();
                    return get("/overview")
                                    .map(o -> o.path("taskmanagers").asInt())
                                    .orElse(0)
                            >= n;
                },
                timeout);
        if (!ok) {
            throw new IllegalStateException("%d TaskManagers not registered at %s within %s (overview: %s)"
                    .formatted(
                            n,
                            restAddress(),
                            timeout,
                            get("/overview").map(JsonNode::toString).orElse("no answer")));
        }
    }

    /** Resource ids of the TaskManagers registered at the JobManager now; empty without an answer. */
    java.util.Set<String> taskManagerIds() {
        java.util.Set<String> ids = new java.util.TreeSet<>();
        get("/taskmanagers")
                .ifPresent(t ->
                        t.path("taskmanagers").forEach(m -> ids.add(m.path("id").asText())));
        return ids;
    }

    /** Fails naming the process, its exit code and log files when a process that was not {@link #kill}ed has exited. */
    void requireAlive() {
        for (Node n : nodes.values()) {
            if (!n.process().isAlive() && !killed.contains(n.name())) {
                throw new IllegalStateException("%s exited with code %d; see %s and %s"
                        .formatted(n.name(), n.process().exitValue(), n.log(), n.out()));
            }
        }
    }

    /** GET {@code path} on the REST API as JSON; empty when the JobManager does not answer or answers non-200. */
    Optional<JsonNode> get(String path) {
        try {
            HttpResponse<String> r = http.send(
                    HttpRequest.newBuilder(restAddress().resolve(path))
                            .timeout(Duration.ofSeconds(5))
                            .GET()
                            .build(),
                    HttpResponse.BodyHandlers.ofString());
            return r.statusCode() == 200 ? Optional.of(JSON.readTree(r.body())) : Optional.empty();
        } catch (IOException e) {
            return Optional.empty();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        }
    }

    /** The job's state as the REST API reports it (RUNNING, RESTARTING, ...), or "UNKNOWN" without an answer. */
    String jobState(String jobId) {
        return get("/jobs/" + jobId).map(j -> j.path("state").asText("UNKNOWN")).orElse("UNKNOWN");
    }

    /**
     * Every subtask of every vertex of the job, as (vertex name, subtask index, status, TaskManager resource id); empty
     * without an answer.
     */
    List<Subtask> subtasks(String jobId) {
        List<Subtask> out = new ArrayList<>();
        Optional<JsonNode> job = get("/jobs/" + jobId);
        if (job.isEmpty()) {
            return out;
        }
        for (JsonNode v : job.get().path("vertices")) {
            Optional<JsonNode> details =
                    get("/jobs/" + jobId + "/vertices/" + v.path("id").asText());
            if (details.isEmpty()) {
                return List.of();
            }
            for (JsonNode s : details.get().path("subtasks")) {
                out.add(new Subtask(
                        v.path("name").asText(),
                        s.path("subtask").asInt(),
                        s.path("status").asText(),
                        s.path("taskmanager-id").asText()));
            }
        }
        return out;
    }

    /** One subtask's place and state. */
    record Subtask(String vertex, int index, String status, String taskManager) {}

    /** Whether the job is RUNNING with every subtask RUNNING (what "recovered" means here). */
    boolean allRunning(String jobId) {
        List<Subtask> s = subtasks(jobId);
        return jobState(jobId).equals("RUNNING")
                && !s.isEmpty()
                && s.stream().allMatch(t -> t.status().equals("RUNNING"));
    }

    /**
     * The metrics of one operator ({@code operatorPrefix}, e.g. {@code session_memory.}) of the job's vertex whose name
     * contains {@code vertex}, summed over its subtasks, from the REST metrics endpoint: metric name (without the
     * prefix) to sum. Empty without an answer, or before Flink's metric fetcher has seen them.
     */
    java.util.Map<String, Double> operatorMetricSums(String jobId, String vertex, String operatorPrefix) {
        java.util.Map<String, Double> out = new java.util.TreeMap<>();
        Optional<JsonNode> job = get("/jobs/" + jobId);
        if (job.isEmpty()) {
            return out;
        }
        for (JsonNode v : job.get().path("vertices")) {
            if (!v.path("name").asText().contains(vertex)) {
                continue;
            }
            String base = "/jobs/" + jobId + "/vertices/" + v.path("id").asText() + "/subtasks/metrics";
            List<String> ids = new ArrayList<>();
            get(base).ifPresent(list -> list.forEach(m -> ids.add(m.path("id").asText())));
            List<String> wanted =
                    ids.stream().filter(id -> id.startsWith(operatorPrefix)).toList();
            for (int from = 0; from < wanted.size(); from += 20) {
                String get = String.join(",", wanted.subList(from, Math.min(wanted.size(), from + 20)));
                get(base + "?get=" + java.net.URLEncoder.encode(get, java.nio.charset.StandardCharsets.UTF_8)
                                + "&agg=sum")
                        .ifPresent(list -> list.forEach(m -> out.put(
                                m.path("id")
                                        .asText()
                                        .substring(m.path("id").asText().lastIndexOf('.') + 1),
                                m.path("sum").asDouble(Double.NaN))));
            }
        }
        return out;
    }

    /** Number of completed checkpoints of the job, or -1 without an answer. */
    long completedCheckpoints(String jobId) {
        return get("/jobs/" + jobId + "/checkpoints")
                .map(c -> c.path("counts").path("completed").asLong(-1))
                .orElse(-1L);
    }

    /** Root causes of the job's failovers so far (the exception history), newest first. */
    List<String> failures(String jobId) {
        List<String> out = new ArrayList<>();
        get("/jobs/" + jobId + "/exceptions")
                .ifPresent(e -> e.path("exceptionHistory")
                        .path("entries")
                        .forEach(x -> out.add(x.path("exceptionName").asText() + " on "
                                + x.path("taskManagerId").asText("?"))));
        return out;
    }

    /** Prints the last {@code lines} lines of every process's log and stdout, for a failed test's report. */
    void printLogTails(PrintStream to, int lines) {
        for (Node n : nodes.values()) {
            for (Path f : List.of(n.log(), n.out())) {
                to.printf(
                        "----- %s: last %d lines of %s (alive: %s) -----%n",
                        n.name(), lines, f, n.process().isAlive());
                try {
                    List<String> all = Files.exists(f) ? Files.readAllLines(f) : List.of("(no file)");
                    all.subList(Math.max(0, all.size() - lines), all.size()).forEach(to::println);
                } catch (IOException | UncheckedIOException e) {
                    to.println("(cannot read: " + e + ")");
                }
            }
        }
    }

    private synchronized void destroyAll() {
        nodes.values().forEach(n -> n.process().destroyForcibly());
    }

    /** Stops every process (SIGTERM, then SIGKILL after 10 s); idempotent. */
    @Override
    public synchronized void close() {
        // TaskManagers first, so that the JobManager does not start failovers while going down
        List<Node> reversed = new ArrayList<>(nodes.values());
        java.util.Collections.reverse(reversed);
        for (Node n : reversed) {
            n.process().destroy();
        }
        for (Node n : reversed) {
            try {
                if (!n.process().waitFor(10, TimeUnit.SECONDS)) {
                    n.process().destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                n.process().destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
        try {
            Runtime.getRuntime().removeShutdownHook(reaper);
        } catch (IllegalStateException e) {
            // the JVM is already shutting down: the hook runs anyway and finds everything stopped
        }
    }

    /** Deletes the processes' temporary directories (blob caches, RPC jars); call after {@link #close()}. */
    void deleteTemporaryFiles() throws IOException {
        Path tmp = dir.resolve("tmp");
        if (Files.exists(tmp)) {
            try (java.util.stream.Stream<Path> files = Files.walk(tmp)) {
                for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(f);
                }
            }
        }
    }

    /**
     * The JVM flags of every Flink process of the Docker deployment ({@code env.java.opts.all} in
     * docker/flink/config.yaml), so that this test runs the cluster with the flags production uses.
     */
    static List<String> deploymentJvmFlags() throws IOException {
        Path config =
                Path.of("..", "docker", "flink", "config.yaml").toAbsolutePath().normalize();
        String key = "env.java.opts.all:";
        return Files.readAllLines(config).stream()
                .filter(l -> l.startsWith(key))
                .findFirst()
                .map(l -> split(l.substring(key.length())))
                .orElseThrow(() -> new IllegalStateException(config + " has no " + key + " line"));
    }

    /**
     * The test's classpath: Surefire/Failsafe run tests from a manifest-only jar and put the real classpath in
     * {@code java.class.path} of the forked JVM.
     */
    private static String classpath() {
        return System.getProperty("java.class.path");
    }

    private static List<String> split(String flags) {
        return Arrays.stream(flags.strip().split("\\s+"))
                .filter(f -> !f.isEmpty())
                .toList();
    }

    /**
     * A port on 127.0.0.1 that is free now and was not handed out before in this JVM, below Linux's ephemeral range
     * (32768-60999): a JVM binds its ports seconds after they are chosen, and a port from the ephemeral range can be
     * taken in between as the source port of some outgoing connection (seen: the JobManager's REST port). The scan
     * starts at an offset derived from the process id, so concurrent test JVMs start at different ports.
     */
    static synchronized int freePort() {
        int span = 32768 - 20000;
        int start = (int) (ProcessHandle.current().pid() * 7919 % span);
        for (int i = 0; i < span; i++) {
            int port = 20000 + (start + i) % span;
            if (HANDED_OUT.contains(port)) {
                continue;
            }
            try (ServerSocket s = new ServerSocket()) {
                s.bind(new java.net.InetSocketAddress(HOST, port));
                HANDED_OUT.add(port);
                return port;
            } catch (IOException e) {
                // taken: try the next one
            }
        }
        throw new IllegalStateException("no free port on " + HOST + " between 20000 and 32767");
    }

    private static final java.util.Set<Integer> HANDED_OUT = new java.util.HashSet<>();
}
