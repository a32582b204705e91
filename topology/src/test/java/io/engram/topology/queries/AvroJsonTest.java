package io.engram.topology.queries;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.ErrorClass;
import io.engram.schemas.SourceCoordinates;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class AvroJsonTest {

    @Test
    void fieldsKeepSchemaNamesUnionsAreUnwrappedBytesAreBase64() {
        DeadLetter l = DeadLetter.newBuilder()
                .setSource(new SourceCoordinates("in", 2, 7L))
                .setValue(ByteBuffer.wrap(new byte[] {1, 2, 3}))
                .setReason("r")
                .setErrorClass(ErrorClass.TOO_LARGE)
                .setTimestampMs(5L)
                .build();
        ObjectNode json = AvroJson.toJson(l);
        assertThat(json.path("source").path("partition").asInt()).isEqualTo(2);
        assertThat(json.path("value").asText()).isEqualTo("AQID");
        assertThat(json.path("key").isNull()).isTrue();
        assertThat(json.path("error_class").asText()).isEqualTo("TOO_LARGE");
        assertThat(json.path("timestamp_ms").asLong()).isEqualTo(5L);
        assertThat(json.size())
                .isEqualTo(DeadLetter.getClassSchema().getFields().size());
    }
}
