package io.engram.topology.queries;

import java.net.InetAddress;
import java.util.Locale;

/**
 * Which HTTP requests the query endpoint serves, judged from its bind address and the request's {@code Host} and
 * {@code Origin} headers.
 *
 * <p>Bound to a loopback address (the default), the endpoint is for this machine only: a request must name a loopback
 * host ({@code localhost}, {@code 127.x.y.z}, {@code [::1]}). That defeats DNS rebinding, where a web page the user
 * opens resolves its own name to 127.0.0.1 and reads every session through the browser: such a request carries the
 * page's host name. Whatever the binding, a request with an {@code Origin} must come from the endpoint's own origin, so
 * no other site's scripts can read answers, and a cross-site page cannot drive the endpoint.
 */
final class RequestGuard {

    private final boolean loopbackOnly;

    /** @param bindHost the host the server is bound to */
    RequestGuard(String bindHost) {
        this.loopbackOnly = isLoopback(bindHost);
    }

    /** Whether the endpoint is bound to loopback (serves this machine only). */
    boolean loopbackOnly() {
        return loopbackOnly;
    }

    /** Why the request is refused (403), or null when it is served. */
    String refusal(String hostHeader, String originHeader) {
        if (hostHeader == null || hostHeader.isBlank()) {
            return "a Host header is required";
        }
        String host = hostName(hostHeader);
        if (loopbackOnly && !isLoopbackName(host)) {
            return "this endpoint is bound to loopback and serves only requests for localhost, not '" + truncated(host)
                    + "' (set engram.queries.http-host to serve other hosts)";
        }
        if (originHeader != null && !originHeader.equals("http://" + hostHeader)) {
            return "cross-origin request from '" + truncated(originHeader) + "' refused";
        }
        return null;
    }

    /** The host part of a Host header ({@code name}, {@code name:port}, {@code [v6]:port}), lower case. */
    static String hostName(String hostHeader) {
        String h = hostHeader.strip().toLowerCase(Locale.ROOT);
        if (h.startsWith("[")) {
            int end = h.indexOf(']');
            return end < 0 ? h : h.substring(0, end + 1);
        }
        int colon = h.indexOf(':');
        return colon < 0 ? h : h.substring(0, colon);
    }

    static boolean isLoopbackName(String host) {
        if (host.equals("localhost") || host.endsWith(".localhost") || host.equals("[::1]")) {
            return true;
        }
        // a dotted IPv4 literal in 127.0.0.0/8; never resolve names here (that is what DNS rebinding abuses)
        String[] parts = host.split("\\.", -1);
        if (parts.length != 4 || !parts[0].equals("127")) {
            return false;
        }
        for (String p : parts) {
            if (p.isEmpty() || p.length() > 3 || !p.chars().allMatch(Character::isDigit) || Integer.parseInt(p) > 255) {
                return false;
            }
        }
        return true;
    }

    private static boolean isLoopback(String bindHost) {
        try {
            return InetAddress.getByName(bindHost).isLoopbackAddress();
        } catch (java.net.UnknownHostException e) {
            return false;
        }
    }

    private static String truncated(String s) {
        return s.length() <= 100 ? s : s.substring(0, 100) + "...";
    }
}
