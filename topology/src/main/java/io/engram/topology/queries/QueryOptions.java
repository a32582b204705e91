package io.engram.topology.queries;

import io.engram.topology.options.Option;

/** Settings of the Kafka Streams query application ({@link EngramQueries}) and its HTTP endpoint. */
public final class QueryOptions {

    public static final Option<String> APPLICATION_ID = Option.stringKey("engram.queries.application-id")
            .defaultValue("engram-queries")
            .check(s -> s.matches("[A-Za-z0-9._-]+"), "letters, digits, '.', '_' or '-'")
            .description("Kafka Streams application.id of the query app: its consumer group and the prefix of its "
                    + "internal topics.");

    public static final Option<String> HTTP_HOST = Option.stringKey("engram.queries.http-host")
            .defaultValue("127.0.0.1")
            .check(s -> !s.isBlank(), "a host name or address")
            .description("Address the query HTTP endpoint binds to, and the host 'engram ask' polls.");

    public static final Option<Integer> HTTP_PORT = Option.intKey("engram.queries.http-port")
            .defaultValue(8080)
            .check(p -> p >= 0 && p <= 65535, "0..65535 (0: any free port)")
            .description(
                    "Port of the query HTTP endpoint (GET /sessions/{id}/answers/{queryId}, /sessions/{id}/summary, /health) "
                            + "and of the web view (GET /: sessions; /sessions/{id}: a session's page, live).");

    public static final Option<String> AUTH_TOKEN = Option.stringKey("engram.queries.auth-token")
            .noDefault()
            .description("Bearer token the query endpoint requires (Authorization: Bearer <token>; a browser opens "
                    + "/?token=<token> once and gets a cookie). Required when engram.queries.http-host is not a loopback "
                    + "address; unset on loopback: no token. GET /health needs none.");

    public static final Option<Integer> MAX_CONNECTIONS = Option.intKey("engram.queries.max-connections")
            .defaultValue(64)
            .check(n -> n > 0, "> 0")
            .description("Requests the query endpoint serves at once (live page streams included); more get 503.");

    private QueryOptions() {}
}
