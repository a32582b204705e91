package io.engram.operators;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import org.apache.avro.Schema;
import org.apache.avro.SchemaParser;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.IndexedRecord;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.util.Utf8;

/**
 * Finds the first string field of an Avro binary record whose bytes are not valid UTF-8.
 *
 * <p>Why this exists: Avro decodes strings with {@code new String(bytes, UTF_8)}, which silently replaces malformed
 * input with U+FFFD, so the decoded event cannot tell a bad byte from a real replacement character. This validator
 * decodes the record generically with a copy of the schema that lacks {@code avro.java.string=String}, so every string
 * stays raw {@link Utf8} bytes, and checks them strictly. Slow path only: {@link EventDecoder} runs it when a decoded
 * text contains U+FFFD. Not thread-safe; one instance per operator.
 */
final class Utf8Validator {

    private final GenericDatumReader<Object> reader;
    private final CharsetDecoder strict = StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);

    Utf8Validator(Schema schema) {
        Schema rawStrings = SchemaParser.parseSingle(schema.toString()
                .replace("\"avro.java.string\":\"String\"", "")
                .replace(",}", "}")
                .replace("{,", "{"));
        this.reader = new GenericDatumReader<>(rawStrings, rawStrings, new GenericData());
    }

    /**
     * @param body the Avro binary record (no single-object header), written with this validator's schema
     * @return the dotted path of the first field with invalid UTF-8 (e.g. {@code payload.text}), or empty if all
     *     strings are valid
     * @throws IOException if the bytes are not a record of the schema
     */
    Optional<String> firstInvalidField(byte[] body, int offset, int length) throws IOException {
        Object record = reader.read(null, DecoderFactory.get().binaryDecoder(body, offset, length, null));
        return Optional.ofNullable(find(record, ""));
    }

    private String find(Object datum, String path) {
        switch (datum) {
            case Utf8 s -> {
                try {
                    strict.reset().decode(ByteBuffer.wrap(s.getBytes(), 0, s.getByteLength()));
                    return null;
                } catch (CharacterCodingException e) {
                    return path;
                }
            }
            case IndexedRecord rec -> {
                for (Schema.Field f : rec.getSchema().getFields()) {
                    String hit = find(rec.get(f.pos()), path.isEmpty() ? f.name() : path + "." + f.name());
                    if (hit != null) {
                        return hit;
                    }
                }
                return null;
            }
            case Iterable<?> items -> {
                for (Object item : items) {
                    String hit = find(item, path + "[]");
                    if (hit != null) {
                        return hit;
                    }
                }
                return null;
            }
            case null, default -> {
                return null;
            }
        }
    }
}
