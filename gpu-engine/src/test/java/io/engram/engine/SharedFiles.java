package io.engram.engine;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates {@code ../shared} (models, tokenizers) for tests, skipping with a message when it is absent. */
public final class SharedFiles {
    private SharedFiles() {}

    public static Path root() {
        return Path.of(System.getProperty("engram.shared.dir", "../shared"))
                .toAbsolutePath()
                .normalize();
    }

    /** The path under shared/, or a skipped test when it does not exist. */
    public static Path require(String relative) {
        Path p = root().resolve(relative);
        assumeTrue(Files.exists(p), "no " + p + " (the ../shared folder beside the project); skipping this check");
        return p;
    }
}
