package io.engram.schemas;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.avro.Schema;

/** The written rules of schemas/README.md that Avro's compatibility checker does not cover. */
final class SchemaRules {

    private SchemaRules() {}

    /**
     * Adds a line to {@code violations} for every field without a doc, every enum without a default symbol, every
     * string type that would generate {@code Utf8}, and every field that is absent from the released schema of the same
     * record but has no default.
     */
    static void check(Schema schema, Map<String, Schema> released, List<String> violations) {
        walk(schema, released, violations, new HashSet<>());
    }

    private static void walk(Schema schema, Map<String, Schema> released, List<String> violations, Set<String> seen) {
        switch (schema.getType()) {
            case RECORD -> {
                if (!seen.add(schema.getFullName())) {
                    return;
                }
                if (!EngramSchemas.PACKAGE.equals(schema.getNamespace())) {
                    violations.add(schema.getFullName() + ": namespace must be " + EngramSchemas.PACKAGE);
                }
                Schema old = released.get(schema.getFullName());
                for (Schema.Field field : schema.getFields()) {
                    String where = schema.getName() + "." + field.name();
                    if (field.doc() == null || field.doc().isBlank()) {
                        violations.add(where + ": field has no doc");
                    }
                    if (old != null && old.getField(field.name()) == null && !field.hasDefaultValue()) {
                        violations.add(where + ": field added after the release has no default");
                    }
                    walk(field.schema(), released, violations, seen);
                }
            }
            case ENUM -> {
                if (seen.add(schema.getFullName()) && schema.getEnumDefault() == null) {
                    violations.add(schema.getFullName() + ": enum declares no default symbol");
                }
            }
            case UNION -> schema.getTypes().forEach(t -> walk(t, released, violations, seen));
            case ARRAY -> walk(schema.getElementType(), released, violations, seen);
            case MAP -> walk(schema.getValueType(), released, violations, seen);
            case STRING -> {
                if (!"String".equals(schema.getProp("avro.java.string"))) {
                    violations.add("a string type without avro.java.string=String (generates Utf8): " + schema);
                }
            }
            default -> {}
        }
    }
}
