package io.engram.topology;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;
import static org.assertj.core.api.Assertions.assertThat;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.EvaluationResult;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The module rules of ../shared/docs/style.md and issue 19, checked on the compiled classes of every module (the
 * topology test classpath holds them all): the engine knows nothing of Flink, Kafka, Avro or RocksDB; Flink appears in
 * {@code state} only in its Flink package (and its benches), else only in operators and topology; modules point
 * downwards only; no main source file is over 600 lines. No module has a package cycle.
 */
class ArchitectureTest {

    static JavaClasses main;

    @BeforeAll
    static void importClasses() {
        // the other modules are class folders when one module is built and jars in a full reactor build: take both,
        // never test classes or test jars
        ImportOption mainOnly = location -> !location.contains("/test-classes/") && !location.contains("-tests.jar");
        main = new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .withImportOption(mainOnly)
                .importPackages("io.engram");
        for (String p : List.of(
                "io.engram.engine.session",
                "io.engram.state.session",
                "io.engram.operators.session",
                "io.engram.topology",
                "io.engram.schemas")) {
            assertThat(main.stream().anyMatch(c -> c.getPackageName().equals(p)))
                    .as("classes of %s were imported", p)
                    .isTrue();
        }
    }

    @Test
    void theEngineKnowsNoStreamingStorageOrSchemaLibrary() {
        noClasses()
                .that()
                .resideInAPackage("io.engram.engine..")
                .should()
                .dependOnClassesThat()
                .resideInAnyPackage(
                        "org.apache.flink..",
                        "org.apache.kafka..",
                        "org.apache.avro..",
                        "org.rocksdb..",
                        "io.engram.schemas..",
                        "io.engram.state..",
                        "io.engram.operators..",
                        "io.engram.topology..")
                .check(main);
    }

    @Test
    void flinkOnlyInStatesFlinkPackageAndAboveIt() {
        noClasses()
                .that()
                .resideInAPackage("io.engram.state..")
                .and()
                .resideOutsideOfPackages("io.engram.state.flink..", "io.engram.state.bench..")
                .should()
                .dependOnClassesThat()
                .resideInAPackage("org.apache.flink..")
                .check(main);
        noClasses()
                .that()
                .resideInAnyPackage("io.engram.schemas..", "io.engram.engine..")
                .should()
                .dependOnClassesThat()
                .resideInAPackage("org.apache.flink..")
                .check(main);
    }

    @Test
    void modulesPointDownwardsOnly() {
        noClasses()
                .that()
                .resideInAPackage("io.engram.state..")
                .should()
                .dependOnClassesThat()
                .resideInAnyPackage("io.engram.operators..", "io.engram.topology..")
                .check(main);
        noClasses()
                .that()
                .resideInAPackage("io.engram.operators..")
                .should()
                .dependOnClassesThat()
                .resideInAPackage("io.engram.topology..")
                .check(main);
        noClasses()
                .that()
                .resideInAPackage("io.engram.schemas..")
                .should()
                .dependOnClassesThat()
                .resideInAnyPackage(
                        "io.engram.engine..", "io.engram.state..", "io.engram.operators..", "io.engram.topology..")
                .check(main);
    }

    @Test
    void noNewPackageCycles() {
        List<String> found = new ArrayList<>();
        for (String module : List.of("engine", "state", "operators", "topology")) {
            EvaluationResult r = slices().matching("io.engram." + module + ".(*)..")
                    .should()
                    .beFreeOfCycles()
                    .evaluate(main);
            for (String line : r.getFailureReport().getDetails()) {
                if (line.startsWith("Cycle detected: ")) {
                    // "Cycle detected: Slice a -> \n  Slice b -> \n  Slice a\n  1. Dependencies of Slice a ..."
                    List<String> names = new ArrayList<>();
                    for (String part :
                            line.substring("Cycle detected: ".length()).lines().toList()) {
                        String p = part.strip();
                        if (!p.startsWith("Slice ")) {
                            break;
                        }
                        names.add(
                                p.substring("Slice ".length()).replace("->", "").strip());
                    }
                    found.add(module + ": " + String.join(" -> ", names));
                }
            }
        }
        assertThat(new TreeSet<>(found)).as("package cycles").isEmpty();
    }

    /** Main files over 600 lines today, with the issue that splits them; the list may shrink, never grow. */
    static final Map<String, String> OVERSIZE = Map.of();

    @Test
    void noMainSourceFileIsOver600Lines() throws IOException {
        List<String> over = new ArrayList<>();
        for (String module : List.of("schemas", "gpu-engine", "state", "operators", "topology")) {
            over.addAll(filesOver(module + "/src/main/java", 600));
        }
        assertThat(over).as("main files over 600 lines (style.md)").isSubsetOf(OVERSIZE.keySet());
    }

    /** One class per memory algorithm, each small enough to read against its paper (issue 18: at most 400 lines). */
    @Test
    void noMemoryPolicyFileIsOver400Lines() throws IOException {
        assertThat(filesOver("gpu-engine/src/main/java/io/engram/engine/memory", 400))
                .as("memory policy files over 400 lines")
                .isEmpty();
    }

    private static List<String> filesOver(String dir, int max) throws IOException {
        Path root = Path.of("..").toAbsolutePath().normalize();
        List<String> over = new ArrayList<>();
        try (Stream<Path> files = Files.walk(root.resolve(dir))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                long lines;
                try (Stream<String> l = Files.lines(f)) {
                    lines = l.count();
                }
                if (lines > max) {
                    over.add(root.relativize(f).toString());
                }
            }
        }
        return over;
    }
}
