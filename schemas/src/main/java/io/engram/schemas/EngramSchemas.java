package io.engram.schemas;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.SchemaParseException;
import org.apache.avro.SchemaParser;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;
import org.apache.avro.util.ClassSecurityValidator;
import org.apache.avro.util.ClassSecurityValidator.ClassSecurityPredicate;

/**
 * The Avro types of Engram, and the one switch that lets Avro 1.12.2 decode into them.
 *
 * <p>Avro 1.12.2 refuses to instantiate generated classes that are not on its trust list
 * ({@code SecurityException: Forbidden io.engram.schemas.EngramEvent! This class is not trusted}). The JVM flag
 * {@code -Dorg.apache.avro.SERIALIZABLE_PACKAGES=io.engram.schemas} fixes that for JVMs we launch; {@link
 * #trustEngramClasses()} does the same in code for JVMs we do not (a Flink task manager started by someone else,
 * a test runner without our flags). Call it before the first decode; it is idempotent and thread-safe.
 *
 * <p>It also knows the released schemas (evolution rule 5 of schemas/README.md): {@link #decoder(Class)} reads records
 * written with the current schema or with any released one, so data already on a topic stays readable after an additive
 * schema change. The released {@code .avsc} files ship as resources under {@value #RELEASED}, named by the index
 * {@code versions.txt} there.
 */
public final class EngramSchemas {

    /** The Avro namespace and Java package of every Engram schema. */
    public static final String PACKAGE = "io.engram.schemas";

    /** Every top-level record written to or read from Kafka, in no particular order. */
    public static final List<Class<? extends SpecificRecord>> TOPIC_RECORDS =
            List.of(EngramEvent.class, Answer.class, Summary.class, Attribution.class, DeadLetter.class);

    /** Resource folder (relative to this class) of the released schemas and their index {@code versions.txt}. */
    static final String RELEASED = "released/";

    private static final AtomicBoolean TRUSTED = new AtomicBoolean();

    private EngramSchemas() {}

    /**
     * Adds every class of package {@value #PACKAGE} (records and enums) to Avro's global trust list, keeping
     * whatever was trusted before (the defaults and the system-property lists).
     */
    public static void trustEngramClasses() {
        if (TRUSTED.compareAndSet(false, true)) {
            ClassSecurityPredicate ours = EngramSchemas::isEngramClass;
            ClassSecurityValidator.setGlobal(
                    ClassSecurityValidator.composite(ClassSecurityValidator.getGlobal(), ours));
        }
    }

    /** Whether {@code type} is one of our generated Avro classes (nested types included). */
    static boolean isEngramClass(Class<?> type) {
        return PACKAGE.equals(type.getPackageName());
    }

    /** The current schema of each {@link #TOPIC_RECORDS} type. */
    public static List<Schema> topicSchemas() {
        return List.of(
                EngramEvent.getClassSchema(),
                Answer.getClassSchema(),
                Summary.getClassSchema(),
                Attribution.getClassSchema(),
                DeadLetter.getClassSchema());
    }

    /**
     * A single-object decoder for {@code type} that reads its current schema and every released writer schema of the
     * same full name (schemas/README.md, rule 5); a fingerprint of none of them still throws {@link
     * org.apache.avro.message.MissingSchemaException}. Also {@linkplain #trustEngramClasses() trusts} our classes.
     * Use this, not {@code Type.getDecoder()}, for every record read from a topic.
     */
    public static <T extends SpecificRecord> BinaryMessageDecoder<T> decoder(Class<T> type) {
        trustEngramClasses();
        SpecificData model = SpecificData.getForClass(type);
        Schema current = model.getSchema(type);
        BinaryMessageDecoder<T> decoder = new BinaryMessageDecoder<>(model, current);
        long currentFingerprint = SchemaNormalization.parsingFingerprint64(current);
        for (Schema writer : releasedWriterSchemas(current.getFullName())) {
            if (SchemaNormalization.parsingFingerprint64(writer) != currentFingerprint) {
                decoder.addSchema(writer);
            }
        }
        return decoder;
    }

    /** The released versions, oldest first (e.g. {@code v1}), as listed in {@code released/versions.txt}. */
    public static List<String> releasedVersions() {
        return List.copyOf(Released.VERSIONS.keySet());
    }

    /** The named types (records, enums) of one released version, by full name. */
    public static Map<String, Schema> releasedSchemas(String version) {
        Map<String, Schema> schemas = Released.VERSIONS.get(version);
        if (schemas == null) {
            throw new IllegalArgumentException(
                    "no released schema version '%s'; released: %s".formatted(version, Released.VERSIONS.keySet()));
        }
        return schemas;
    }

    /**
     * Every distinct released schema (by parsing fingerprint, oldest first) of the type named {@code fullName}; empty
     * for a type that was never released. The current schema is included only if it equals a released one.
     */
    public static List<Schema> releasedWriterSchemas(String fullName) {
        List<Schema> writers = new ArrayList<>();
        List<Long> seen = new ArrayList<>();
        for (Map<String, Schema> version : Released.VERSIONS.values()) {
            Schema schema = version.get(fullName);
            if (schema != null && !seen.contains(SchemaNormalization.parsingFingerprint64(schema))) {
                seen.add(SchemaNormalization.parsingFingerprint64(schema));
                writers.add(schema);
            }
        }
        return writers;
    }

    /** The released schemas, parsed once on first use. */
    private static final class Released {
        static final Map<String, Map<String, Schema>> VERSIONS = load();

        private static Map<String, Map<String, Schema>> load() {
            Map<String, Map<String, Schema>> versions = new LinkedHashMap<>();
            String index = RELEASED + "versions.txt";
            try (InputStream in = open(index);
                    BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = lines.readLine()) != null) {
                    line = line.strip();
                    if (line.isEmpty() || line.startsWith("#")) {
                        continue;
                    }
                    String[] words = line.split("\\s+");
                    versions.put(words[0], parseVersion(words[0], List.of(words).subList(1, words.length)));
                }
            } catch (IOException e) {
                throw new UncheckedIOException("reading the released-schema index " + index, e);
            }
            return Collections.unmodifiableMap(versions);
        }

        /** One parser per version: a file may name the types of the files before it. */
        private static Map<String, Schema> parseVersion(String version, List<String> files) throws IOException {
            SchemaParser parser = new SchemaParser();
            for (String file : files) {
                String resource = RELEASED + version + "/" + file;
                try (InputStream in = open(resource)) {
                    parser.parse(in, StandardCharsets.UTF_8);
                } catch (SchemaParseException e) {
                    throw new IllegalStateException(
                            "released schema " + resource + " does not parse: " + e.getMessage(), e);
                }
            }
            Map<String, Schema> byName = new LinkedHashMap<>();
            for (Schema schema : parser.getParsedNamedSchemas()) {
                byName.put(schema.getFullName(), schema);
            }
            return Map.copyOf(byName);
        }

        private static InputStream open(String resource) {
            InputStream in = EngramSchemas.class.getResourceAsStream(resource);
            if (in == null) {
                throw new IllegalStateException("resource " + PACKAGE.replace('.', '/') + "/" + resource
                        + " is missing from the classpath; the schemas jar is incomplete");
            }
            return in;
        }
    }
}
