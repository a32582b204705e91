package io.engram.it;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * A headless Chromium for browser tests, driven over the DevTools protocol (JSON over a WebSocket, with
 * {@code java.net.http}): evaluate JavaScript in the page, wait for a condition, take a screenshot. One page; a fresh
 * profile in a temporary directory, deleted on {@link #close()}, which also ends the browser and its child processes.
 *
 * <p>{@link #find()} looks for the browser at {@code $ENGRAM_CHROMIUM}, on {@code PATH} ({@code chromium},
 * {@code chromium-browser}, {@code google-chrome}) and where {@code src/test/browser/install-chromium.sh} unpacks it
 * ({@code $ENGRAM_CHROMIUM_DIR}, default {@code ~/.cache/engram/chromium}).
 */
final class Chromium implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(30);

    private final Process process;
    private final Path profile;
    private final WebSocket socket;
    private final AtomicInteger ids = new AtomicInteger();
    private final Map<Integer, CompletableFuture<JsonNode>> waiting = new ConcurrentHashMap<>();

    /** Where {@link #find()} looks, for skip messages. */
    static String searched() {
        return "$ENGRAM_CHROMIUM, chromium/chromium-browser/google-chrome on PATH, "
                + localDir().resolve("chromium");
    }

    /** The Chromium binary to use, if there is one. */
    static Optional<Path> find() {
        List<Path> candidates = new ArrayList<>();
        String configured = System.getenv("ENGRAM_CHROMIUM");
        if (configured != null && !configured.isBlank()) {
            candidates.add(Path.of(configured));
        }
        for (String dir : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
            for (String name : List.of("chromium", "chromium-browser", "google-chrome")) {
                if (!dir.isEmpty()) {
                    candidates.add(Path.of(dir, name));
                }
            }
        }
        candidates.add(localDir().resolve("chromium"));
        return candidates.stream().filter(Files::isExecutable).findFirst();
    }

    private static Path localDir() {
        String dir = System.getenv("ENGRAM_CHROMIUM_DIR");
        if (dir != null && !dir.isBlank()) {
            return Path.of(dir);
        }
        String cache = System.getenv("XDG_CACHE_HOME");
        return (cache != null && !cache.isBlank() ? Path.of(cache) : Path.of(System.getProperty("user.home"), ".cache"))
                .resolve("engram")
                .resolve("chromium");
    }

    /**
     * Starts the browser headless on {@code url} with a {@code width} x {@code height} window.
     *
     * @throws IOException naming the binary and its log when it does not come up within 60 s
     */
    static Chromium launch(Path binary, URI url, int width, int height) throws Exception {
        Path profile = Files.createTempDirectory("engram-chromium-");
        Path log = profile.resolve("chromium.log");
        Process p = new ProcessBuilder(
                        binary.toString(),
                        "--headless",
                        "--disable-gpu",
                        "--no-sandbox",
                        "--no-first-run",
                        "--no-default-browser-check",
                        "--disable-extensions",
                        "--mute-audio",
                        "--disable-background-networking",
                        "--hide-scrollbars",
                        "--remote-debugging-port=0",
                        "--user-data-dir=" + profile.resolve("data"),
                        "--window-size=" + width + "," + height,
                        url.toString())
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        try {
            Path portFile = profile.resolve("data").resolve("DevToolsActivePort");
            Instant deadline = Instant.now().plusSeconds(60);
            while (!Files.exists(portFile) || Files.readAllLines(portFile).isEmpty()) {
                if (!p.isAlive() || Instant.now().isAfter(deadline)) {
                    throw new IOException("chromium (" + binary + ") did not open its DevTools port; "
                            + (p.isAlive() ? "still starting after 60 s" : "exit code " + p.exitValue()) + "; log:\n"
                            + tail(log));
                }
                TimeUnit.MILLISECONDS.sleep(100); // polling for the browser's port file, bounded by the deadline
            }
            int port = Integer.parseInt(Files.readAllLines(portFile).get(0).trim());
            URI page = pageSocket(port, deadline);
            return new Chromium(p, profile, page);
        } catch (Exception | Error e) {
            destroy(p);
            deleteRecursively(profile);
            throw e;
        }
    }

    /** The DevTools WebSocket of the first page target. */
    private static URI pageSocket(int port, Instant deadline) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        while (true) {
            HttpResponse<String> r = http.send(
                    HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/json/list"))
                            .GET()
                            .build(),
                    HttpResponse.BodyHandlers.ofString());
            for (JsonNode target : JSON.readTree(r.body())) {
                if ("page".equals(target.path("type").asText()) && target.has("webSocketDebuggerUrl")) {
                    return URI.create(target.get("webSocketDebuggerUrl").asText());
                }
            }
            if (Instant.now().isAfter(deadline)) {
                throw new IOException("chromium lists no page target: " + r.body());
            }
            TimeUnit.MILLISECONDS.sleep(100); // polling for the page target, bounded by the deadline
        }
    }

    private Chromium(Process process, Path profile, URI page) throws Exception {
        this.process = process;
        this.profile = profile;
        this.socket = HttpClient.newHttpClient()
                .newWebSocketBuilder()
                .buildAsync(page, new Listener())
                .get(30, TimeUnit.SECONDS);
    }

    /** Receives whole messages (frames joined) and completes the command they answer; events are ignored. */
    private final class Listener implements WebSocket.Listener {
        private final StringBuilder message = new StringBuilder();

        @Override
        public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
            message.append(data);
            if (last) {
                try {
                    JsonNode m = JSON.readTree(message.toString());
                    CompletableFuture<JsonNode> f =
                            m.has("id") ? waiting.remove(m.get("id").asInt()) : null;
                    if (f != null) {
                        f.complete(m);
                    }
                } catch (IOException e) {
                    waiting.values().forEach(f -> f.completeExceptionally(e));
                }
                message.setLength(0);
            }
            ws.request(1);
            return null;
        }
    }

    /** Sends one DevTools command and returns its {@code result}. @throws IOException with the browser's error */
    JsonNode send(String method, ObjectNode params) throws Exception {
        int id = ids.incrementAndGet();
        CompletableFuture<JsonNode> answer = new CompletableFuture<>();
        waiting.put(id, answer);
        ObjectNode command = JSON.createObjectNode().put("id", id).put("method", method);
        command.set("params", params == null ? JSON.createObjectNode() : params);
        synchronized (socket) {
            socket.sendText(JSON.writeValueAsString(command), true).get(COMMAND_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        }
        JsonNode m = answer.get(COMMAND_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        if (m.has("error")) {
            throw new IOException(method + " failed: " + m.get("error"));
        }
        return m.get("result");
    }

    /** Evaluates {@code expression} in the page (promises awaited) and returns its value as JSON. */
    JsonNode evaluate(String expression) throws Exception {
        JsonNode r = send(
                "Runtime.evaluate",
                JSON.createObjectNode()
                        .put("expression", expression)
                        .put("returnByValue", true)
                        .put("awaitPromise", true));
        if (r.has("exceptionDetails")) {
            throw new IOException("page script failed: " + r.get("exceptionDetails"));
        }
        return r.path("result").path("value");
    }

    /** Polls {@code condition} (a script that yields a boolean) until true or {@code timeout}; @return whether it held. */
    boolean await(String condition, Duration timeout) throws Exception {
        Instant deadline = Instant.now().plus(timeout);
        while (true) {
            if (evaluate(condition).asBoolean(false)) {
                return true;
            }
            if (Instant.now().isAfter(deadline)) {
                return false;
            }
            TimeUnit.MILLISECONDS.sleep(100); // polling the page, bounded by the deadline
        }
    }

    /** Loads {@code url} in the page. */
    void navigate(URI url) throws Exception {
        send("Page.navigate", JSON.createObjectNode().put("url", url.toString()));
    }

    /** A PNG of the whole page (beyond the window too) written to {@code png}. */
    void screenshot(Path png) throws Exception {
        JsonNode size = send("Page.getLayoutMetrics", null).path("cssContentSize");
        ObjectNode clip = JSON.createObjectNode()
                .put("x", 0)
                .put("y", 0)
                .put("width", size.path("width").asDouble())
                .put("height", size.path("height").asDouble())
                .put("scale", 1);
        ObjectNode params = JSON.createObjectNode().put("format", "png").put("captureBeyondViewport", true);
        params.set("clip", clip);
        byte[] bytes = Base64.getDecoder()
                .decode(send("Page.captureScreenshot", params).path("data").asText());
        Files.createDirectories(png.toAbsolutePath().getParent());
        Files.write(png, bytes);
    }

    /** Ends the browser (children first seen, then itself) and deletes its profile. */
    @Override
    public void close() {
        socket.abort();
        destroy(process);
        deleteRecursively(profile);
    }

    private static void destroy(Process p) {
        List<ProcessHandle> children = p.descendants().toList();
        p.destroy();
        try {
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
        }
        children.stream().filter(ProcessHandle::isAlive).forEach(ProcessHandle::destroyForcibly);
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    private static void deleteRecursively(Path dir) {
        try (Stream<Path> all = Files.walk(dir)) {
            all.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException e) {
            // a leftover temporary profile is harmless
        }
    }
}
