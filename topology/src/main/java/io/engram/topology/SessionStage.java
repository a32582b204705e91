package io.engram.topology;

import io.engram.schemas.EngramEvent;
import org.apache.flink.streaming.api.datastream.KeyedStream;

/**
 * The per-session part of the job, plugged into {@link EngramJob#build}: it receives the decoded events keyed by
 * session id and returns what it emits. The session memory operator (module operators) provides the production stage.
 *
 * <p>Contract: called once, while the job graph is built. Every operator it adds must carry {@code .uid("engram-<name>")}
 * and {@code .name(...)} ({@code EngramJob.build} fails otherwise) and must have explicit (non-Kryo) type information.
 * Events of one session arrive in Kafka order; each carries its source coordinates in {@code EngramEvent.source}.
 * Events it cannot use (e.g. a query for a session with no memory) go to {@link SessionOutputs#deadLetters()}, built
 * with {@code io.engram.operators.DeadLetters.forEvent}.
 */
@FunctionalInterface
public interface SessionStage {

    /**
     * @param events decoded events, keyed by {@link SessionKey} (session id)
     * @return the stage's output streams; each goes to its exactly-once Kafka sink
     */
    SessionOutputs apply(KeyedStream<EngramEvent, String> events);
}
