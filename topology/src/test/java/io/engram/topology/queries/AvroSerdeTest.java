package io.engram.topology.queries;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionStatus;
import io.engram.schemas.EngramSchemas;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.util.RandomData;
import org.apache.kafka.common.errors.SerializationException;
import org.junit.jupiter.api.Test;

class AvroSerdeTest {

    /** The query app keeps reading attributions written before {@code status} existed (schemas/README.md rule 5). */
    @Test
    void readsRecordsOfAReleasedSchema() throws Exception {
        Schema v1 = EngramSchemas.releasedSchemas("v1")
                .get(Attribution.getClassSchema().getFullName());
        AvroSerde<Attribution> serde = new AvroSerde<>(Attribution.class);
        for (Object datum : new RandomData(v1, 5, 20261124L)) {
            GenericRecord old = (GenericRecord) datum;
            ByteBuffer b = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), v1).encode(old);
            byte[] bytes = new byte[b.remaining()];
            b.get(bytes);
            Attribution read = serde.deserializer().deserialize("attributions", bytes);
            assertThat(read.getQueryId()).isEqualTo(old.get("query_id").toString());
            assertThat(read.getStatus()).isEqualTo(AttributionStatus.COMPLETE);
            // and today's schema round-trips
            byte[] again = serde.serializer().serialize("attributions", read);
            assertThat(serde.deserializer().deserialize("attributions", again)).isEqualTo(read);
        }
    }

    @Test
    void garbageNamesTopicAndType() {
        AvroSerde<Attribution> serde = new AvroSerde<>(Attribution.class);
        assertThatThrownBy(() ->
                        serde.deserializer().deserialize("attributions", "not avro".getBytes(StandardCharsets.UTF_8)))
                .isInstanceOf(SerializationException.class)
                .hasMessageContaining("attributions")
                .hasMessageContaining("Attribution");
    }
}
