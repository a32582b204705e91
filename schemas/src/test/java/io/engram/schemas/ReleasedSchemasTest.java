package io.engram.schemas;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.message.MissingSchemaException;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.specific.SpecificRecord;
import org.apache.avro.util.RandomData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Rule 5 of schemas/README.md: the released schemas ship in the jar, and {@link EngramSchemas#decoder(Class)} reads
 * single-object messages written with any of them into today's classes.
 */
class ReleasedSchemasTest {

    private static final long SEED = 20261124L;

    static Stream<Class<? extends SpecificRecord>> topicRecords() {
        return EngramSchemas.TOPIC_RECORDS.stream();
    }

    /** The released copies kept for the evolution tests ({@code src/test/resources/released/v<N>}). */
    private static Path testCopies() throws Exception {
        return Path.of(ReleasedSchemasTest.class.getResource("/released").toURI());
    }

    @Test
    void theShippedCopiesEqualTheTestCopiesByteForByte() throws Exception {
        List<Path> versions;
        try (Stream<Path> dirs = Files.list(testCopies())) {
            versions = dirs.filter(Files::isDirectory).sorted().toList();
        }
        assertThat(EngramSchemas.releasedVersions())
                .as("released/versions.txt names every released version")
                .containsExactlyElementsOf(
                        versions.stream().map(v -> v.getFileName().toString()).toList());
        for (Path version : versions) {
            List<Path> files;
            try (Stream<Path> list = Files.list(version)) {
                files = list.filter(f -> f.toString().endsWith(".avsc"))
                        .sorted()
                        .toList();
            }
            assertThat(files).isNotEmpty();
            for (Path file : files) {
                String resource = EngramSchemas.RELEASED + version.getFileName() + "/" + file.getFileName();
                try (InputStream shipped = EngramSchemas.class.getResourceAsStream(resource)) {
                    assertThat(shipped).as("main resource %s", resource).isNotNull();
                    assertThat(shipped.readAllBytes()).as(resource).isEqualTo(Files.readAllBytes(file));
                }
            }
            // every file is named by the index: each one's named types were parsed
            String v = version.getFileName().toString();
            List<String> names = new ArrayList<>();
            for (Schema s : SchemaEvolutionTest.parse(version).values()) {
                names.add(s.getFullName());
            }
            assertThat(EngramSchemas.releasedSchemas(v).keySet())
                    .as("types of %s", v)
                    .containsExactlyInAnyOrderElementsOf(names);
            for (String name : names) {
                assertThat(EngramSchemas.releasedSchemas(v).get(name))
                        .isEqualTo(SchemaEvolutionTest.parse(version).get(name));
            }
        }
    }

    @ParameterizedTest
    @MethodSource("topicRecords")
    <T extends SpecificRecord> void messagesOfEveryReleaseDecodeIntoTheCurrentClass(Class<T> type) throws Exception {
        Schema current = SpecificData.getForClass(type).getSchema(type);
        BinaryMessageDecoder<T> decoder = EngramSchemas.decoder(type);
        int n = 0;
        for (String version : EngramSchemas.releasedVersions()) {
            Schema released = EngramSchemas.releasedSchemas(version).get(current.getFullName());
            assertThat(released).as("%s in %s", type.getSimpleName(), version).isNotNull();
            BinaryMessageEncoder<GenericRecord> encoder = new BinaryMessageEncoder<>(GenericData.get(), released);
            for (Object datum : new RandomData(released, 20, SEED)) {
                GenericRecord old = (GenericRecord) datum;
                T read = decoder.decode(encoder.encode(old));
                assertThat(read).isInstanceOf(type);
                // the independent path: plain schema resolution, writer schema given out of band
                byte[] body = body(encoder.encode(old));
                Object expected = new SpecificDatumReader<>(released, current)
                        .read(null, DecoderFactory.get().binaryDecoder(body, null));
                assertThat(read)
                        .as("seed %s, %s %s", SEED, version, type.getSimpleName())
                        .isEqualTo(expected);
                n++;
            }
        }
        assertThat(n).isEqualTo(20 * EngramSchemas.releasedVersions().size());
    }

    /** Why rule 5 exists: Answer changed after v1, and the generated decoder alone refuses v1 answers. */
    @Test
    void theGeneratedDecoderAloneRefusesAReleasedAnswer() throws Exception {
        Schema v1 =
                EngramSchemas.releasedSchemas("v1").get(Answer.getClassSchema().getFullName());
        assertThat(SchemaNormalization.parsingFingerprint64(v1))
                .isNotEqualTo(SchemaNormalization.parsingFingerprint64(Answer.getClassSchema()));
        GenericRecord old =
                (GenericRecord) new RandomData(v1, 1, SEED).iterator().next();
        ByteBuffer message = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), v1).encode(old);
        EngramSchemas.trustEngramClasses();

        assertThatThrownBy(() -> Answer.getDecoder().decode(message.duplicate()))
                .isInstanceOf(MissingSchemaException.class);
        Answer read = EngramSchemas.decoder(Answer.class).decode(message.duplicate());
        assertThat(read.getQueryId()).isEqualTo(old.get("query_id").toString());
    }

    @Test
    void anUnknownFingerprintIsStillRefused() throws Exception {
        Schema other = Schema.createRecord(
                "EngramEvent",
                "not ours",
                "elsewhere",
                false,
                List.of(new Schema.Field("x", Schema.create(Schema.Type.LONG), "doc")));
        GenericRecord rec = new GenericData.Record(other);
        rec.put("x", 7L);
        ByteBuffer message = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), other).encode(rec);
        assertThatThrownBy(() -> EngramSchemas.decoder(EngramEvent.class).decode(message))
                .isInstanceOf(MissingSchemaException.class);
    }

    @Test
    void anUnknownVersionIsNamed() {
        assertThatThrownBy(() -> EngramSchemas.releasedSchemas("v0"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("v0")
                .hasMessageContaining("v1");
    }

    /** The Avro binary body of a single-object message (after the 2-byte marker and the 8-byte fingerprint). */
    private static byte[] body(ByteBuffer message) {
        byte[] all = new byte[message.remaining()];
        message.get(all);
        return Arrays.copyOfRange(all, 10, all.length);
    }
}
