package io.engram.topology;

import io.engram.schemas.EngramEvent;
import org.apache.flink.api.java.functions.KeySelector;

/** The one place the job's key is taken from an event: its session id, which the decoder checked equals the Kafka key. */
public final class SessionKey implements KeySelector<EngramEvent, String> {

    private static final long serialVersionUID = 1L;

    @Override
    public String getKey(EngramEvent event) {
        return event.getSessionId();
    }
}
