package io.engram.topology.queries;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.util.Base64;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.IndexedRecord;

/**
 * Our Avro records as plain JSON for the HTTP endpoint: field names as in the schema (snake_case), unions as their
 * value (no type wrapper), enums as names, bytes as base64.
 */
public final class AvroJson {

    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private AvroJson() {}

    public static ObjectNode toJson(IndexedRecord record) {
        return (ObjectNode) value(record, record.getSchema());
    }

    private static JsonNode value(Object datum, Schema schema) {
        return switch (schema.getType()) {
            case RECORD -> {
                IndexedRecord rec = (IndexedRecord) datum;
                ObjectNode node = NODES.objectNode();
                for (Schema.Field f : schema.getFields()) {
                    node.set(f.name(), value(rec.get(f.pos()), f.schema()));
                }
                yield node;
            }
            case UNION ->
                datum == null
                        ? NODES.nullNode()
                        : value(datum, schema.getTypes().get(GenericData.get().resolveUnion(schema, datum)));
            case ARRAY -> {
                ArrayNode arr = NODES.arrayNode();
                for (Object item : (Iterable<?>) datum) {
                    arr.add(value(item, schema.getElementType()));
                }
                yield arr;
            }
            case MAP -> {
                ObjectNode node = NODES.objectNode();
                ((java.util.Map<?, ?>) datum)
                        .forEach((k, v) -> node.set(k.toString(), value(v, schema.getValueType())));
                yield node;
            }
            case STRING, ENUM -> NODES.textNode(datum.toString());
            case BYTES -> {
                ByteBuffer b = ((ByteBuffer) datum).duplicate();
                byte[] bytes = new byte[b.remaining()];
                b.get(bytes);
                yield NODES.textNode(Base64.getEncoder().encodeToString(bytes));
            }
            case FIXED -> NODES.textNode(Base64.getEncoder().encodeToString(((GenericData.Fixed) datum).bytes()));
            case INT -> NODES.numberNode((Integer) datum);
            case LONG -> NODES.numberNode((Long) datum);
            case FLOAT -> NODES.numberNode((Float) datum);
            case DOUBLE -> NODES.numberNode((Double) datum);
            case BOOLEAN -> NODES.booleanNode((Boolean) datum);
            case NULL -> NODES.nullNode();
        };
    }
}
