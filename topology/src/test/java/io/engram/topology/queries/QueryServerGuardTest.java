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
        assertThat(get("/health", "Host: 127.0.0.1" + port)).startsWith("HTTP/1.1 503"); // served: the app is not running
        assertThat(get("/health", "Host: localhost" + port)).startsWith("HTTP/1.1 503");
        assertThat(get("/health", "Host: localhost" + port, "Origin: http://localhost" + port)).startsWith("HTTP/1.1 503");
    }

    @Test
    void dnsRebindingAndCrossSiteRequestsAreRefused() throws IOException {
        String port = ":" + server.port();
        assertThat(get("/api/sessions", "Host: attacker.example" + port)).startsWith("HTTP/1.1 403")
                .contains("serves only requests for localhost");
        assertThat(get("/health", "Host: 127.0.0.1.evil.example" + port)).startsWith("HTTP/1.1 403");
        assertThat(get("/sessions/s/answers/q1", "Host: localhost" + port, "Origin: http://attacker.example")).startsWith("HTTP/1.1 403")
                .contains("cross-origin");
    }

    @Test
    void badPercentEscapeIsABadRequest() throws IOException {
        // the JDK server refuses a malformed escape in the request line before our handler runs; the handler's own
        // 400 for a decoder failure is the second line of defence
        assertThat(get("/sessions/s/answers/%zz", "Host: localhost:" + server.port())).startsWith("HTTP/1.1 400");
        assertThat(get("/api/sessions/%g1", "Host: localhost:" + server.port())).startsWith("HTTP/1.1 400");
        // well-formed escapes of bytes that are not UTF-8 decode (to U+FFFD) and are looked up: no failure
        assertThat(get("/sessions/%e0%a4/summary", "Host: localhost:" + server.port())).startsWith("HTTP/1.1 503");
    }

    @Test
    void hostNamesAreParsedWithoutResolving() {
        assertThat(RequestGuard.hostName("LocalHost:8080")).isEqualTo("localhost");
        assertThat(RequestGuard.hostName("[::1]:80")).isEqualTo("[::1]");
        assertThat(RequestGuard.isLoopbackName("127.1.2.3")).isTrue();
        assertThat(RequestGuard.isLoopbackName("127.0.0.1.nip.io")).isFalse();
        assertThat(RequestGuard.isLoopbackName("127.0.0.256")).isFalse();
        assertThat(new RequestGuard("0.0.0.0").refusal("engram.example.org:8080", null)).isNull();
        assertThat(new RequestGuard("127.0.0.1").refusal(null, null)).contains("Host header");
    }
}
