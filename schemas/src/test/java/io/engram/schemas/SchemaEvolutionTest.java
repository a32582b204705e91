package io.engram.schemas;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;
import org.apache.avro.SchemaCompatibility.SchemaCompatibilityType;
import org.apache.avro.SchemaParser;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.specific.SpecificDatumReader;
import org.apache.avro.util.RandomData;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The evolution rules of schemas/README.md, checked against the released schemas kept under
 * {@code src/test/resources/released/v<N>}. A change that would stop us reading data already on a topic fails here.
 */
class SchemaEvolutionTest {

    private static final long SEED = 20261123L;

    @BeforeAll
    static void trust() {
        EngramSchemas.trustEngramClasses();
    }

    static Stream<Schema> currentSchemas() {
        return EngramSchemas.topicSchemas().stream();
    }

    static List<Path> releasedVersions() throws IOException, URISyntaxException {
        Path root = Path.of(SchemaEvolutionTest.class.getResource("/released").toURI());
        try (Stream<Path> dirs = Files.list(root)) {
            return dirs.filter(Files::isDirectory).sorted().toList();
        }
    }

    static Map<String, Schema> parse(Path dir) throws IOException {
        SchemaParser parser = new SchemaParser();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path file :
                    files.filter(f -> f.toString().endsWith(".avsc")).sorted().toList()) {
                parser.parse(file);
            }
        }
        return parser.getParsedNamedSchemas().stream().collect(Collectors.toMap(Schema::getFullName, s -> s));
    }

    @Test
    void aReleaseIsKept() throws Exception {
        assertThat(releasedVersions()).isNotEmpty();
        Map<String, Schema> v1 = parse(releasedVersions().getFirst());
        assertThat(v1).containsKeys(currentSchemas().map(Schema::getFullName).toArray(String[]::new));
    }

    @ParameterizedTest
    @MethodSource("currentSchemas")
    void currentSchemaReadsEveryRelease(Schema current) throws Exception {
        for (Path version : releasedVersions()) {
            Schema released = parse(version).get(current.getFullName());
            if (released == null) {
                continue; // introduced after that release
            }
            var result = SchemaCompatibility.checkReaderWriterCompatibility(current, released);
            assertThat(result.getType())
                    .as(
                            "%s: current schema reading data written with %s: %s",
                            current.getName(),
                            version.getFileName(),
                            result.getResult().getIncompatibilities())
                    .isEqualTo(SchemaCompatibilityType.COMPATIBLE);
        }
    }

    @ParameterizedTest
    @MethodSource("currentSchemas")
    void currentSchemaFollowsTheRules(Schema current) throws Exception {
        List<String> violations = new ArrayList<>();
        for (Path version : releasedVersions()) {
            SchemaRules.check(current, parse(version), violations);
        }
        assertThat(violations).as("rules of schemas/README.md").isEmpty();
    }

    /** Records written by the old schema (random, seeded) decode with the generated class of today. */
    @ParameterizedTest
    @MethodSource("currentSchemas")
    void oldDataRoundTripsIntoCurrentClasses(Schema current) throws Exception {
        for (Path version : releasedVersions()) {
            Schema released = parse(version).get(current.getFullName());
            if (released == null) {
                continue;
            }
            int n = 0;
            for (Object datum : new RandomData(released, 20, SEED)) {
                GenericRecord old = (GenericRecord) datum;
                // raw binary, writer schema known out of band
                ByteArrayOutputStream bytes = new ByteArrayOutputStream();
                BinaryEncoder enc = EncoderFactory.get().binaryEncoder(bytes, null);
                new GenericDatumWriter<GenericRecord>(released).write(old, enc);
                enc.flush();
                Object read = new SpecificDatumReader<>(released, current)
                        .read(null, DecoderFactory.get().binaryDecoder(bytes.toByteArray(), null));
                assertThat(read.getClass().getSimpleName()).isEqualTo(current.getName());
                assertThat(((GenericRecord) read)
                                .get(current.getFields().getFirst().name())
                                .toString())
                        .as("seed %s, %s", SEED, version)
                        .isEqualTo(
                                old.get(current.getFields().getFirst().name()).toString());

                // single-object encoding: a decoder that knows the released schema reads its fingerprint
                ByteBuffer message = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), released).encode(old);
                BinaryMessageDecoder<Object> decoder =
                        new BinaryMessageDecoder<>(new org.apache.avro.specific.SpecificData(), current);
                decoder.addSchema(released);
                Object viaMessage = decoder.decode(message);
                assertThat(viaMessage).isEqualTo(read);
                n++;
            }
            assertThat(n).isEqualTo(20);
        }
    }

    /** An Attribution written before {@code status} existed reads as COMPLETE (the field's default), segments intact. */
    @Test
    void aReleasedAttributionReadsAsComplete() throws Exception {
        Schema released = parse(releasedVersions().getFirst())
                .get(Attribution.getClassSchema().getFullName());
        assertThat(released.getField("status")).as("status is new after v1").isNull();
        for (Object datum : new RandomData(released, 5, SEED)) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            BinaryEncoder enc = EncoderFactory.get().binaryEncoder(bytes, null);
            new GenericDatumWriter<GenericRecord>(released).write((GenericRecord) datum, enc);
            enc.flush();
            Attribution read = new SpecificDatumReader<Attribution>(released, Attribution.getClassSchema())
                    .read(null, DecoderFactory.get().binaryDecoder(bytes.toByteArray(), null));
            assertThat(read.getStatus()).isEqualTo(AttributionStatus.COMPLETE);
            assertThat(read.getSegments()).hasSize(((List<?>) ((GenericRecord) datum).get("segments")).size());
        }
    }

    /** The check itself can fail: a required field added without a default is caught. */
    @Test
    void anIncompatibleChangeIsCaught() throws Exception {
        Schema released = parse(releasedVersions().getFirst())
                .get(EngramEvent.getClassSchema().getFullName());
        List<Schema.Field> fields = new ArrayList<>();
        for (Schema.Field f : EngramEvent.getClassSchema().getFields()) {
            fields.add(new Schema.Field(f, f.schema()));
        }
        fields.add(new Schema.Field("tenant", Schema.create(Schema.Type.STRING), "added without a default"));
        Schema broken = Schema.createRecord("EngramEvent", "doc", EngramSchemas.PACKAGE, false, fields);

        assertThat(SchemaCompatibility.checkReaderWriterCompatibility(broken, released)
                        .getType())
                .isEqualTo(SchemaCompatibilityType.INCOMPATIBLE);
        List<String> violations = new ArrayList<>();
        SchemaRules.check(broken, Map.of(released.getFullName(), released), violations);
        assertThat(violations)
                .anySatisfy(v -> assertThat(v).contains("EngramEvent.tenant").contains("default"));
    }

    @Test
    void theRulesCatchMissingDocsAndEnumDefaults() {
        Schema noDefault = Schema.createEnum("Colour", "doc", EngramSchemas.PACKAGE, List.of("RED", "BLUE"));
        Schema record = Schema.createRecord(
                "Paint", "doc", EngramSchemas.PACKAGE, false, List.of(new Schema.Field("colour", noDefault, null)));
        List<String> violations = new ArrayList<>();
        SchemaRules.check(record, Map.of(), violations);
        assertThat(violations)
                .hasSize(2)
                .anySatisfy(v -> assertThat(v).contains("Paint.colour").contains("doc"))
                .anySatisfy(v -> assertThat(v).contains("Colour").contains("default symbol"));
    }
}
