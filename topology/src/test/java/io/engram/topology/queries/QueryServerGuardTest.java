package io.engram.topology.queries;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The query endpoint's request checks over a real socket (the Streams app is built but never started): Host and
 * Origin (DNS rebinding, cross-site reads) and bad percent-escapes.
 */
class QueryServerGuardTest {

    KafkaStreams streams;
    QueryServer server;

    @BeforeEach
    void start() throws IOException {
        StreamsBuilder b = new StreamsBuilder();
        b.stream("in");
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "guard-test");
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "localhost:1");
        streams = new KafkaStreams(b.build(), p);
        server = new QueryServer(streams, "127.0.0.1", 0);
    }

    @AfterEach
    void stop() {
        server.close();
        streams.close();
    }

    /** Status line and body of a GET with the given raw headers. */
    String get(String path, String... headers) throws IOException {
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            StringBuilder req = new StringBuilder("GET " + path + " HTTP/1.1\r\n");
            for (String h : headers) {
                req.append(h).append("\r\n");
            }
            req.append("Connection: close\r\n\r\n");
            OutputStream out = s.getOutputStream();
            out.write(req.toString().getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
            InputStream in = s.getInputStream();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void loopbackHostsAreServed() throws IOException {
        String port = ":" + server.port();
        assertThat(get("/health", "Host: 127.0.0.1" + port))
                .startsWith("HTTP/1.1 503"); // served: the app is not running
        assertThat(get("/health", "Host: localhost" + port)).startsWith("HTTP/1.1 503");
        assertThat(get("/health", "Host: localhost" + port, "Origin: http://localhost" + port))
                .startsWith("HTTP/1.1 503");
    }

    @Test
    void dnsRebindingAndCrossSiteRequestsAreRefused() throws IOException {
        String port = ":" + server.port();
        assertThat(get("/api/sessions", "Host: attacker.example" + port))
                .startsWith("HTTP/1.1 403")
                .contains("serves only requests for localhost");
        assertThat(get("/health", "Host: 127.0.0.1.evil.example" + port)).startsWith("HTTP/1.1 403");
        assertThat(get("/sessions/s/answers/q1", "Host: localhost" + port, "Origin: http://attacker.example"))
                .startsWith("HTTP/1.1 403")
                .contains("cross-origin");
    }

    @Test
    void badPercentEscapeIsABadRequest() throws IOException {
        // the JDK server refuses a malformed escape in the request line before our handler runs; the handler's own
        // 400 for a decoder failure is the second line of defence
        assertThat(get("/sessions/s/answers/%zz", "Host: localhost:" + server.port()))
                .startsWith("HTTP/1.1 400");
        assertThat(get("/api/sessions/%g1", "Host: localhost:" + server.port())).startsWith("HTTP/1.1 400");
        // well-formed escapes of bytes that are not UTF-8 decode (to U+FFFD) and are looked up: no failure
        assertThat(get("/sessions/%e0%a4/summary", "Host: localhost:" + server.port()))
                .startsWith("HTTP/1.1 503");
    }

    @Test
    void hostNamesAreParsedWithoutResolving() {
        assertThat(RequestGuard.hostName("LocalHost:8080")).isEqualTo("localhost");
        assertThat(RequestGuard.hostName("[::1]:80")).isEqualTo("[::1]");
        assertThat(RequestGuard.isLoopbackName("127.1.2.3")).isTrue();
        assertThat(RequestGuard.isLoopbackName("127.0.0.1.nip.io")).isFalse();
        assertThat(RequestGuard.isLoopbackName("127.0.0.256")).isFalse();
        assertThat(new RequestGuard("0.0.0.0").refusal("engram.example.org:8080", null))
                .isNull();
        assertThat(new RequestGuard("127.0.0.1").refusal(null, null)).contains("Host header");
    }

    @Test
    void withATokenEveryRequestButHealthNeedsItByHeaderCookieOrOnceByQuery() throws IOException {
        try (QueryServer guarded = new QueryServer(streams, new SessionChanges(), "127.0.0.1", 0, "s3cret-token", 4)) {
            String host = "Host: localhost:" + guarded.port();
            int port = guarded.port();
            assertThat(get(port, "/sessions/s/answers/q", host))
                    .startsWith("HTTP/1.1 401")
                    .contains("Bearer")
                    .doesNotContain("s3cret");
            assertThat(get(port, "/sessions/s/answers/q", host, "Authorization: Bearer wrong"))
                    .startsWith("HTTP/1.1 401");
            assertThat(get(port, "/sessions/s/answers/q", host, "Authorization: Bearer s3cret-token"))
                    .startsWith("HTTP/1.1 503"); // past the token: the stores are not running
            assertThat(get(port, "/health", host)).startsWith("HTTP/1.1 503");
            String page = get(port, "/api/sessions?token=s3cret-token", host);
            assertThat(page)
                    .startsWith("HTTP/1.1 503")
                    .containsIgnoringCase(
                            "Set-Cookie: engram_token=s3cret-token; Path=/; HttpOnly; " + "SameSite=Strict");
            assertThat(get(port, "/api/sessions", host, "Cookie: a=b; engram_token=s3cret-token"))
                    .startsWith("HTTP/1.1 503");
            assertThat(get(port, "/api/sessions", host, "Cookie: engram_token=nope"))
                    .startsWith("HTTP/1.1 401");
        }
    }

    @Test
    void longUrlsAndBodiesAreRefusedAndAnOpenAddressNeedsAToken() throws IOException {
        String host = "Host: localhost:" + server.port();
        assertThat(get("/sessions/" + "x".repeat(3000) + "/summary", host)).startsWith("HTTP/1.1 414");
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            s.getOutputStream()
                    .write(("GET /health HTTP/1.1\r\n" + host + "\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
                                    + "hello")
                            .getBytes(StandardCharsets.ISO_8859_1));
            s.getOutputStream().flush();
            assertThat(new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8))
                    .startsWith("HTTP/1.1 413");
        }
        org.assertj.core.api.Assertions.assertThatThrownBy(
                        () -> new QueryServer(streams, new SessionChanges(), "0.0.0.0", 0, null, 4))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("engram.queries.auth-token");
    }

    @Test
    void requestsBeyondTheConnectionBoundGet503() throws Exception {
        try (QueryServer small = new QueryServer(streams, new SessionChanges(), "127.0.0.1", 0, null, 1);
                Socket held = new Socket("127.0.0.1", small.port())) {
            // a request whose headers never end holds the one place until it is answered or the server closes
            held.getOutputStream()
                    .write(("GET /api/sessions/s/stream HTTP/1.1\r\nHost: localhost:" + small.port() + "\r\n\r\n")
                            .getBytes(StandardCharsets.ISO_8859_1));
            held.getOutputStream().flush();
            String second = "";
            for (int i = 0; i < 50 && !second.startsWith("HTTP/1.1 503"); i++) {
                Thread.sleep(100);
                second = get(small.port(), "/health", "Host: localhost:" + small.port());
            }
            assertThat(second).startsWith("HTTP/1.1 503").contains("engram.queries.max-connections");
        }
    }

    static String get(int port, String path, String... headers) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            StringBuilder req = new StringBuilder("GET " + path + " HTTP/1.1\r\n");
            for (String h : headers) {
                req.append(h).append("\r\n");
            }
            req.append("Connection: close\r\n\r\n");
            s.getOutputStream().write(req.toString().getBytes(StandardCharsets.ISO_8859_1));
            s.getOutputStream().flush();
            return new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
