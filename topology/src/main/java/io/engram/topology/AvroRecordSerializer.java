package io.engram.topology;

import io.engram.schemas.EngramSchemas;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.avro.Schema;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.util.function.SerializableFunction;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Writes one of our Avro records to a fixed topic: key = the session id (UTF-8), value = single-object encoding.
 *
 * @param <T> the generated record class
 */
public final class AvroRecordSerializer<T extends SpecificRecord> implements KafkaRecordSerializationSchema<T> {

    private static final long serialVersionUID = 1L;

    private final String topic;
    private final Class<T> type;
    private final SerializableFunction<T, String> sessionId;
    private transient BinaryMessageEncoder<T> encoder;

    /**
     * @param sessionId the record's session id, or null for none (the Kafka key is then null)
     */
    public AvroRecordSerializer(String topic, Class<T> type, SerializableFunction<T, String> sessionId) {
        this.topic = topic;
        this.type = type;
        this.sessionId = sessionId;
    }

    @Override
    public void open(SerializationSchema.InitializationContext context, KafkaSinkContext sinkContext) {
        EngramSchemas.trustEngramClasses();
        Schema schema = SpecificData.get().getSchema(type);
        encoder = new BinaryMessageEncoder<>(SpecificData.getForClass(type), schema);
    }

    @Override
    public ProducerRecord<byte[], byte[]> serialize(T element, KafkaSinkContext context, Long timestamp) {
        String session = sessionId.apply(element);
        try {
            ByteBuffer value = encoder.encode(element);
            byte[] bytes = new byte[value.remaining()];
            value.get(bytes);
            return new ProducerRecord<>(
                    topic, null, timestamp, session == null ? null : session.getBytes(StandardCharsets.UTF_8), bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "encoding a " + type.getSimpleName() + " of session " + session + " for topic " + topic, e);
        }
    }
}
