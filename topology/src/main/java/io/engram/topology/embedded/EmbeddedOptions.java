package io.engram.topology.embedded;

import io.engram.topology.options.Option;

/** Settings of the embedded mode ({@code engram run}). */
public final class EmbeddedOptions {

    public static final Option<Integer> KAFKA_PORT = Option.intKey("engram.embedded.kafka-port")
            .defaultValue(9092)
            .check(p -> p >= 0 && p <= 65535, "0..65535 (0: any free port)")
            .description("Port of the embedded broker's client listener (on 127.0.0.1). The default matches the "
                    + "default engram.kafka.bootstrap-servers, so other engram commands reach it.");

    private EmbeddedOptions() {}
}
