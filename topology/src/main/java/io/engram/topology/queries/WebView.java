package io.engram.topology.queries;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.Semaphore;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.errors.InvalidStateStoreException;

/**
 * The web view of {@link QueryServer}: plain HTML, CSS and JavaScript from this jar's resources (no external
 * libraries, works offline) over JSON endpoints that tests use too.
 *
 * <ul>
 *   <li>{@code GET /}: the list of sessions; {@code GET /sessions/{id}}: the page of one session.
 *   <li>{@code GET /api/sessions}: {@code {"sessions": [{session_id, content_events, queries, answers}]}}.
 *   <li>{@code GET /api/sessions/{id}[?limit=N][&before=OFFSET]}: the session's {@link SessionView} over the newest N
 *       records of each of its logs (default {@value #DEFAULT_LIMIT}, at most {@value #MAX_LIMIT}), or of what came
 *       before input offset OFFSET; {@code truncated} says older ones were left out and {@code next_before} is the
 *       cursor of the next older page; 404 when the stores hold nothing of it.
 *   <li>{@code GET /api/sessions/{id}/stream}: Server-Sent Events; an {@code event: session} with the view now, then
 *       one whenever it changes (at once on a {@link SessionChanges} touch, else checked every {@value #POLL_SECONDS}
 *       s), and a comment line every {@value #KEEPALIVE_SECONDS} s of quiet.
 *   <li>{@code GET /static/{name}}: the page's assets.
 * </ul>
 * At most {@value #MAX_STREAMS} live streams at once; more get 503. Thread-safe; each stream holds one (virtual)
 * thread of the server's executor until the client goes or the server closes (which interrupts it).
 */
final class WebView {

    static final int MAX_STREAMS = 64;
    static final int POLL_SECONDS = 2;
    static final int KEEPALIVE_SECONDS = 15;
    /** Sessions listed on the index page at most. */
    static final int MAX_SESSIONS = 1000;
    /** Records of each of a session's logs a view holds by default (its newest), and at most ({@code ?limit=}). */
    static final int DEFAULT_LIMIT = 500;

    static final int MAX_LIMIT = 10_000;

    private static final String ASSETS = "/io/engram/topology/queries/web/";
    private static final Pattern SESSION_PAGE = Pattern.compile("/sessions/([^/]+)/?");
    private static final Pattern SESSION_API = Pattern.compile("/api/sessions/([^/]+)");
    private static final Pattern SESSION_STREAM = Pattern.compile("/api/sessions/([^/]+)/stream");
    private static final Pattern PARAM = Pattern.compile("(limit|before)=(\\d+)");
    private static final Pattern ASSET = Pattern.compile("/static/([a-z0-9-]+\\.(css|js|svg))");

    private final KafkaStreams streams;
    private final SessionReader reader;
    private final SessionChanges changes;
    private final ObjectMapper json;
    private final Semaphore streamSlots = new Semaphore(MAX_STREAMS);

    WebView(KafkaStreams streams, SessionChanges changes, ObjectMapper json) {
        this.streams = streams;
        this.reader = new SessionReader(streams);
        this.changes = changes;
        this.json = json;
    }

    /** Serves {@code path} if it is one of the web view's; @return false if it is not. */
    boolean handle(HttpExchange exchange, String path) throws IOException {
        Matcher m;
        if (path.equals("/") || path.equals("/index.html")) {
            asset(exchange, "index.html");
        } else if ((m = SESSION_PAGE.matcher(path)).matches()) {
            asset(exchange, "session.html");
        } else if ((m = ASSET.matcher(path)).matches()) {
            asset(exchange, m.group(1));
        } else if (path.equals("/api/sessions")) {
            sessions(exchange);
        } else if ((m = SESSION_STREAM.matcher(path)).matches()) {
            stream(exchange, decode(m.group(1)));
        } else if ((m = SESSION_API.matcher(path)).matches()) {
            session(exchange, decode(m.group(1)));
        } else {
            return false;
        }
        return true;
    }

    private void sessions(HttpExchange exchange) throws IOException {
        ArrayNode rows = json.createArrayNode();
        try {
            for (SessionReader.SessionRow r : reader.sessions(MAX_SESSIONS)) {
                rows.addObject()
                        .put("session_id", r.sessionId())
                        .put("content_events", r.contentEvents())
                        .put("queries", r.queries())
                        .put("answers", r.answers());
            }
        } catch (InvalidStateStoreException e) {
            unavailable(exchange);
            return;
        }
        ObjectNode body = json.createObjectNode();
        body.set("sessions", rows);
        send(exchange, 200, "application/json; charset=utf-8", json.writeValueAsBytes(body));
    }

    private void session(HttpExchange exchange, String session) throws IOException {
        int limit = DEFAULT_LIMIT;
        long before = Long.MAX_VALUE;
        String query = exchange.getRequestURI().getRawQuery();
        if (query != null && !query.isEmpty()) {
            boolean ok = true;
            for (String param : query.split("&", -1)) {
                Matcher q = PARAM.matcher(param);
                if (!q.matches() || q.group(2).length() > 18) {
                    ok = false;
                } else if (q.group(1).equals("limit")) {
                    limit = q.group(2).length() <= 6 ? Integer.parseInt(q.group(2)) : -1;
                    ok &= limit >= 1 && limit <= MAX_LIMIT;
                } else {
                    before = Long.parseLong(q.group(2));
                }
            }
            if (!ok) {
                send(
                        exchange,
                        400,
                        "application/json; charset=utf-8",
                        json.writeValueAsBytes(json.createObjectNode()
                                .put(
                                        "error",
                                        "parameters: limit=N (1.." + MAX_LIMIT
                                                + ") and before=OFFSET (an input offset, from"
                                                + " a page's next_before), got '" + query + "'")));
                return;
            }
        }
        SessionData data;
        try {
            data = reader.read(session, limit, before);
        } catch (InvalidStateStoreException e) {
            unavailable(exchange);
            return;
        }
        if (data.isEmpty()) {
            send(
                    exchange,
                    404,
                    "application/json; charset=utf-8",
                    json.writeValueAsBytes(json.createObjectNode()
                            .put("error", "no events, answers or summaries of session '" + session + "' (yet)")));
            return;
        }
        send(exchange, 200, "application/json; charset=utf-8", json.writeValueAsBytes(SessionView.toJson(data)));
    }

    private void stream(HttpExchange exchange, String session) throws IOException {
        if (!streamSlots.tryAcquire()) {
            send(
                    exchange,
                    503,
                    "application/json; charset=utf-8",
                    json.writeValueAsBytes(json.createObjectNode()
                            .put("error", MAX_STREAMS + " live streams are open already; retry later")));
            return;
        }
        try {
            exchange.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
            exchange.getResponseHeaders().set("Cache-Control", "no-store");
            exchange.sendResponseHeaders(200, 0);
            OutputStream out = exchange.getResponseBody();
            String sent = null;
            long quietSince = System.nanoTime();
            while (!Thread.currentThread().isInterrupted()) {
                long version = changes.version(session);
                String view = viewOrNull(session);
                if (view != null && !view.equals(sent)) {
                    out.write(("event: session\ndata: " + view + "\n\n").getBytes(StandardCharsets.UTF_8));
                    out.flush();
                    sent = view;
                    quietSince = System.nanoTime();
                } else if (System.nanoTime() - quietSince
                        >= Duration.ofSeconds(KEEPALIVE_SECONDS).toNanos()) {
                    out.write(": keep-alive\n\n".getBytes(StandardCharsets.UTF_8)); // finds clients that went away
                    out.flush();
                    quietSince = System.nanoTime();
                }
                changes.await(session, version, Duration.ofSeconds(POLL_SECONDS));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt(); // the server is closing
        } catch (IOException e) {
            // the client went away
        } finally {
            streamSlots.release();
        }
    }

    /** The session's view as JSON, or null while the stores are unavailable (the stream retries). */
    private String viewOrNull(String session) throws IOException {
        try {
            return json.writeValueAsString(SessionView.toJson(reader.read(session, DEFAULT_LIMIT)));
        } catch (InvalidStateStoreException e) {
            return null;
        }
    }

    private void asset(HttpExchange exchange, String name) throws IOException {
        byte[] bytes;
        try (InputStream in = WebView.class.getResourceAsStream(ASSETS + name)) {
            if (in == null) {
                send(exchange, 404, "text/plain; charset=utf-8", ("no asset " + name).getBytes(StandardCharsets.UTF_8));
                return;
            }
            bytes = in.readAllBytes();
        }
        String type = switch (name.substring(name.lastIndexOf('.') + 1)) {
            case "html" -> "text/html; charset=utf-8";
            case "css" -> "text/css; charset=utf-8";
            case "js" -> "text/javascript; charset=utf-8";
            case "svg" -> "image/svg+xml";
            default -> "application/octet-stream";
        };
        send(exchange, 200, type, bytes);
    }

    private void unavailable(HttpExchange exchange) throws IOException {
        send(
                exchange,
                503,
                "application/json; charset=utf-8",
                json.writeValueAsBytes(json.createObjectNode()
                        .put(
                                "error",
                                "the query app's stores are not available now (" + streams.state() + "); retry")));
    }

    private static void send(HttpExchange exchange, int status, String type, byte[] body) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", type);
        exchange.sendResponseHeaders(status, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }

    private static String decode(String segment) {
        return URLDecoder.decode(segment, StandardCharsets.UTF_8);
    }
}
