package io.engram.schemas;

import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.avro.Schema;
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
 */
public final class EngramSchemas {

    /** The Avro namespace and Java package of every Engram schema. */
    public static final String PACKAGE = "io.engram.schemas";

    /** Every top-level record written to or read from Kafka, in no particular order. */
    public static final List<Class<? extends SpecificRecord>> TOPIC_RECORDS =
            List.of(EngramEvent.class, Answer.class, Summary.class, Attribution.class, DeadLetter.class);

    private static final AtomicBoolean TRUSTED = new AtomicBoolean();

    private EngramSchemas() {}

    /**
     * Adds every class of package {@value #PACKAGE} (records and enums) to Avro's global trust list, keeping
     * whatever was trusted before (the defaults and the system-property lists).
     */
    public static void trustEngramClasses() {
        if (TRUSTED.compareAndSet(false, true)) {
            ClassSecurityPredicate ours = EngramSchemas::isEngramClass;
            ClassSecurityValidator.setGlobal(ClassSecurityValidator.composite(ClassSecurityValidator.getGlobal(), ours));
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
}
