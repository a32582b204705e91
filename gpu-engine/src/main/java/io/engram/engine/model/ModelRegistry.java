package io.engram.engine.model;

import io.engram.engine.tokenizer.Tokenizer;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one JVM-wide cache of loaded weights: every operator instance (task slot) of a TaskManager that asks for the
 * same model folder shares one memory mapping. Reference-counted: {@link #acquire} in {@code open()}, {@link
 * Lease#close()} in {@code close()}; the mapping is released when the last lease closes. Thread-safe.
 */
public final class ModelRegistry {
    private static final Logger LOG = LoggerFactory.getLogger(ModelRegistry.class);
    private static final Map<Path, Entry> LOADED = new HashMap<>();

    private static final class Entry {
        final Model model;
        final Tokenizer tokenizer;
        int refs;

        Entry(Model model, Tokenizer tokenizer) {
            this.model = model;
            this.tokenizer = tokenizer;
        }
    }

    private ModelRegistry() {}

    /** A shared model and its tokenizer; close it exactly once. */
    public static final class Lease implements AutoCloseable {
        private final Path key;
        private final Entry entry;
        private boolean closed;

        private Lease(Path key, Entry entry) {
            this.key = key;
            this.entry = entry;
        }

        public Model model() {
            return entry.model;
        }

        public Tokenizer tokenizer() {
            return entry.tokenizer;
        }

        @Override
        public void close() {
            synchronized (LOADED) {
                if (closed) {
                    return;
                }
                closed = true;
                if (--entry.refs == 0) {
                    LOADED.remove(key);
                    entry.model.close();
                    LOG.debug("released model {}", key);
                }
            }
        }
    }

    /**
     * Loads (or shares) the model at {@code path}: a Hugging Face folder or a {@code .gguf} file.
     *
     * @throws ModelFormatException for a bad folder or file
     */
    public static Lease acquire(Path path) {
        Path key = path.toAbsolutePath().normalize();
        synchronized (LOADED) {
            Entry e = LOADED.get(key);
            if (e == null) {
                long t0 = System.nanoTime();
                Model m = Model.open(key);
                try {
                    e = new Entry(m, m.tokenizer());
                } catch (RuntimeException ex) {
                    m.close();
                    throw ex;
                }
                LOADED.put(key, e);
                LOG.info(
                        "loaded model {} ({} {} layers, hidden {}) in {} ms",
                        key,
                        m.config().architecture(),
                        m.config().layers(),
                        m.config().hiddenSize(),
                        (System.nanoTime() - t0) / 1_000_000);
            }
            e.refs++;
            return new Lease(key, e);
        }
    }
}
