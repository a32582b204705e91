package io.engram.topology.queries;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.concurrent.Semaphore;

/**
 * Who may use the query endpoint and how much of it: an optional bearer token (required when the endpoint is bound to
 * anything but loopback), a bound on URL length and on request bodies (only GETs without a body are served), and on
 * requests in flight (live streams included).
 *
 * <p>The token is accepted from an {@code Authorization: Bearer} header, from the {@code engram_token} cookie, or once
 * as {@code ?token=} on a page URL, which sets that cookie (HttpOnly, SameSite=Strict) so that a browser's page and its
 * live stream carry it without putting it in every link. {@code /health} stays open: it tells only the app's state.
 */
final class AccessControl {
    static final String COOKIE = "engram_token";
    static final int MAX_URL_CHARS = 2048;

    private final byte[] token;
    private final Semaphore inFlight;
    private final int maxConnections;

    /**
     * @param token the bearer token, or null/blank for none
     * @param loopbackOnly whether the endpoint is bound to loopback (without a token it must be)
     * @param maxConnections requests served at once at most
     * @throws IllegalArgumentException when bound off loopback without a token
     */
    AccessControl(String token, boolean loopbackOnly, int maxConnections) {
        if ((token == null || token.isBlank()) && !loopbackOnly) {
            throw new IllegalArgumentException("the query endpoint is bound to a non-loopback address, so it needs "
                    + "engram.queries.auth-token (a long random string; clients send 'Authorization: Bearer <token>')");
        }
        if (maxConnections < 1) {
            throw new IllegalArgumentException("max connections must be >= 1, got " + maxConnections);
        }
        this.token = token == null || token.isBlank() ? null : token.getBytes(StandardCharsets.UTF_8);
        this.inFlight = new Semaphore(maxConnections);
        this.maxConnections = maxConnections;
    }

    /** A refusal: HTTP status and message. */
    record Refusal(int status, String message) {}

    /**
     * Why the request is refused, or null when it may be served.
     *
     * @param rawUri the request URI as sent
     * @param contentLength the request's Content-Length header, or null
     * @param authorization the Authorization header, or null
     * @param cookie the Cookie header, or null
     * @param queryToken the {@code token} query parameter, or null
     */
    Refusal check(
            String path,
            String rawUri,
            String contentLength,
            String transferEncoding,
            String authorization,
            String cookie,
            String queryToken) {
        if (rawUri.length() > MAX_URL_CHARS) {
            return new Refusal(414, "the URL is over " + MAX_URL_CHARS + " characters");
        }
        if ((contentLength != null && !contentLength.strip().equals("0")) || transferEncoding != null) {
            return new Refusal(413, "requests carry no body here (only GET is served)");
        }
        if (token == null || path.equals("/health")) {
            return null;
        }
        if (matches(bearer(authorization)) || matches(cookieValue(cookie)) || matches(queryToken)) {
            return null;
        }
        return new Refusal(
                401,
                "this endpoint needs its token: 'Authorization: Bearer <engram.queries.auth-token>' "
                        + "(or open /?token=<token> once in a browser)");
    }

    /** Whether the request's {@code ?token=} is right and a cookie should be set for the browser. */
    boolean setsCookie(String queryToken) {
        return token != null && matches(queryToken);
    }

    /** The Set-Cookie header value carrying the token. */
    String cookieHeader() {
        return COOKIE + "=" + new String(token, StandardCharsets.UTF_8) + "; Path=/; HttpOnly; SameSite=Strict";
    }

    /** Takes a place for one request; false when {@code maxConnections} are being served (answer 503). */
    boolean enter() {
        return inFlight.tryAcquire();
    }

    void exit() {
        inFlight.release();
    }

    int maxConnections() {
        return maxConnections;
    }

    private boolean matches(String candidate) {
        return candidate != null && MessageDigest.isEqual(token, candidate.getBytes(StandardCharsets.UTF_8));
    }

    private static String bearer(String authorization) {
        if (authorization == null) {
            return null;
        }
        String a = authorization.strip();
        return a.regionMatches(true, 0, "Bearer ", 0, 7) ? a.substring(7).strip() : null;
    }

    private static String cookieValue(String cookieHeader) {
        if (cookieHeader == null) {
            return null;
        }
        for (String part : cookieHeader.split(";")) {
            String p = part.strip();
            if (p.startsWith(COOKIE + "=")) {
                return p.substring(COOKIE.length() + 1);
            }
        }
        return null;
    }

    /** The value of query parameter {@code name} in a raw query string, decoded, or null. */
    static String queryParameter(String rawQuery, String name) {
        if (rawQuery == null) {
            return null;
        }
        for (String pair : rawQuery.split("&")) {
            int eq = pair.indexOf('=');
            if (eq > 0 && pair.substring(0, eq).equals(name)) {
                try {
                    return java.net.URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
                } catch (IllegalArgumentException e) {
                    return null;
                }
            }
        }
        return null;
    }
}
