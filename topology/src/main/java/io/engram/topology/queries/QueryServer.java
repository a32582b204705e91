package io.engram.topology.queries;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.avro.specific.SpecificRecord;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * HTTP endpoint over the {@link EngramQueries} stores (JDK {@code HttpServer}, JSON via Jackson):
 *
 * <ul>
 *   <li>{@code GET /sessions/{sessionId}/answers/{queryId}}: 200 with the Answer, 404 if the session has none (yet)
 *       under that id; a query id is never looked up without its session.
 *   <li>{@code GET /sessions/{sessionId}/summary}: 200 with the latest Summary, 404 if none.
 *   <li>{@code GET /health}: 200 when the Streams app is RUNNING, else 503; the body names the state.
 *   <li>The web view: {@code GET /} (sessions), {@code GET /sessions/{id}} (a session's page, live) and the JSON and
 *       event-stream endpoints behind them; see {@link WebView}.
 * </ul>
 * While stores are unavailable (rebalancing, starting) lookups answer 503. Errors are JSON {@code {"error": ...}}.
 * Serves only this instance's stores: with several instances a key may live on another one (not handled yet).
 * Runs each exchange on its own virtual thread (live streams stay open); usable once constructed; {@link #close()}
 * stops it.
 */
public final class QueryServer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(QueryServer.class);
    private static final Pattern ANSWER = Pattern.compile("/sessions/([^/]+)/answers/([^/]+)");
    private static final Pattern SESSIONLESS_ANSWER = Pattern.compile("/answers/([^/]+)");
    private static final Pattern SUMMARY = Pattern.compile("/sessions/([^/]+)/summary");

    private final KafkaStreams streams;
    private final HttpServer server;
    private final ExecutorService executor;
    private final ObjectMapper json = new ObjectMapper();
    private final WebView web;
    private final RequestGuard guard;
    private final AccessControl access;

    /**
     * Binds and starts serving; without {@link SessionChanges} the web view's live streams look for changes every
     * {@value WebView#POLL_SECONDS} s.
     *
     * @param port 0 for any free port; see {@link #port()}
     * @throws IOException if the address cannot be bound
     */
    public QueryServer(KafkaStreams streams, String host, int port) throws IOException {
        this(streams, new SessionChanges(), host, port);
    }

    /**
     * Binds and starts serving; the web view's live streams wake on {@code changes} (from {@link EngramQueries#build}).
     *
     * @param port 0 for any free port; see {@link #port()}
     * @throws IOException if the address cannot be bound
     */
    public QueryServer(KafkaStreams streams, SessionChanges changes, String host, int port) throws IOException {
        this(streams, changes, host, port, null, 64);
    }

    /**
     * Binds and starts serving with a bearer token ({@link AccessControl}) and a bound on requests in flight.
     *
     * @param authToken required from clients unless null or blank; required when {@code host} is not loopback
     * @throws IllegalArgumentException when bound off loopback without a token
     */
    public QueryServer(
            KafkaStreams streams, SessionChanges changes, String host, int port, String authToken, int maxConnections)
            throws IOException {
        this.streams = streams;
        this.web = new WebView(streams, changes, json);
        this.guard = new RequestGuard(host);
        this.access = new AccessControl(authToken, guard.loopbackOnly(), maxConnections);
        this.server = HttpServer.create(new InetSocketAddress(host, port), 0);
        this.executor = Executors.newThreadPerTaskExecutor(
                Thread.ofVirtual().name("engram-query-http-", 0).factory());
        server.setExecutor(executor);
        server.createContext("/", this::handle);
        server.start();
    }

    /** The bound port. */
    public int port() {
        return server.getAddress().getPort();
    }

    /** {@code http://host:port}. */
    public URI uri() {
        return URI.create("http://" + server.getAddress().getHostString() + ":" + port());
    }

    private void handle(HttpExchange exchange) throws IOException {
        if (!access.enter()) {
            try (exchange) {
                respond(
                        exchange,
                        503,
                        error("the endpoint is serving " + access.maxConnections()
                                + " requests already (engram.queries.max-connections); retry"));
            }
            return;
        }
        try {
            serve(exchange);
        } finally {
            access.exit();
        }
    }

    private void serve(HttpExchange exchange) throws IOException {
        try (exchange) {
            if (!"GET".equals(exchange.getRequestMethod())) {
                respond(exchange, 405, error("only GET is served"));
                return;
            }
            String refusal = guard.refusal(
                    exchange.getRequestHeaders().getFirst("Host"),
                    exchange.getRequestHeaders().getFirst("Origin"));
            if (refusal != null) {
                respond(exchange, 403, error(refusal));
                return;
            }
            String path = exchange.getRequestURI().getRawPath();
            var h = exchange.getRequestHeaders();
            String queryToken =
                    AccessControl.queryParameter(exchange.getRequestURI().getRawQuery(), "token");
            AccessControl.Refusal denied = access.check(
                    path,
                    exchange.getRequestURI().toString(),
                    h.getFirst("Content-Length"),
                    h.getFirst("Transfer-Encoding"),
                    h.getFirst("Authorization"),
                    h.getFirst("Cookie"),
                    queryToken);
            if (denied != null) {
                respond(exchange, denied.status(), error(denied.message()));
                return;
            }
            if (access.setsCookie(queryToken)) {
                exchange.getResponseHeaders().add("Set-Cookie", access.cookieHeader());
            }
            try {
                route(exchange, path);
            } catch (IllegalArgumentException e) {
                // URLDecoder on a bad percent-escape: the client's mistake, not a server failure
                respond(exchange, 400, error("bad percent-escape in the path: " + e.getMessage()));
            }
        } catch (RuntimeException e) {
            LOG.warn("query {} failed", exchange.getRequestURI(), e);
        }
    }

    private void route(HttpExchange exchange, String path) throws IOException {
        Matcher m;
        if (path.equals("/health")) {
            KafkaStreams.State state = streams.state();
            ObjectNode body = json.createObjectNode().put("state", state.name());
            respond(exchange, state == KafkaStreams.State.RUNNING ? 200 : 503, body);
        } else if ((m = ANSWER.matcher(path)).matches()) {
            lookup(
                    exchange,
                    EngramQueries.ANSWERS_STORE,
                    EngramQueries.answerKey(decode(m.group(1)), decode(m.group(2))),
                    "answer in session '" + decode(m.group(1)) + "' to query '" + decode(m.group(2)) + "'");
        } else if (SESSIONLESS_ANSWER.matcher(path).matches()) {
            respond(exchange, 404, error("answers are kept per session: GET /sessions/{sessionId}/answers/{queryId}"));
        } else if ((m = SUMMARY.matcher(path)).matches()) {
            lookup(
                    exchange,
                    EngramQueries.SUMMARIES_STORE,
                    decode(m.group(1)),
                    "summary for session '" + decode(m.group(1)) + "'");
        } else if (!web.handle(exchange, path)) {
            respond(
                    exchange,
                    404,
                    error("no such resource: " + path
                            + " (GET /sessions/{id}/answers/{queryId}, /sessions/{id}/summary, /health, /api/sessions, /,"
                            + " /sessions/{id})"));
        }
    }

    private void lookup(HttpExchange exchange, String store, String key, String what) throws IOException {
        SpecificRecord value;
        try {
            ReadOnlyKeyValueStore<String, SpecificRecord> kv = streams.store(StoreQueryParameters.fromNameAndType(
                    store, QueryableStoreTypes.<String, SpecificRecord>keyValueStore()));
            value = kv.get(key);
        } catch (InvalidStateStoreException e) {
            respond(exchange, 503, error("store " + store + " is not available now (" + streams.state() + "); retry"));
            return;
        }
        if (value == null) {
            respond(exchange, 404, error("no " + what + " (yet)"));
        } else {
            respond(exchange, 200, AvroJson.toJson(value));
        }
    }

    private ObjectNode error(String message) {
        return json.createObjectNode().put("error", message);
    }

    private void respond(HttpExchange exchange, int status, ObjectNode body) throws IOException {
        byte[] bytes = json.writeValueAsBytes(body);
        exchange.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    private static String decode(String segment) {
        return URLDecoder.decode(segment, StandardCharsets.UTF_8);
    }

    /** Stops accepting requests, waits up to a second for running ones, and stops the threads. */
    @Override
    public void close() {
        server.stop(1);
        executor.shutdownNow();
    }
}
