package io.engram.engine.session;

import io.engram.engine.attribution.Segmenter;
import io.engram.engine.backend.Backend;
import io.engram.engine.backend.Backends;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.config.ModelConfig;
import io.engram.engine.memory.DuoSpec;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.memory.MemorySpec;
import io.engram.engine.memory.duo.DuoAttention;
import io.engram.engine.memory.duo.HeadPattern;
import io.engram.engine.model.Model;
import io.engram.engine.model.ModelRegistry;
import io.engram.engine.model.Transformer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One engine, assembled from a validated {@link Spec}: the model (weights and tokenizer, shared per JVM through
 * {@link ModelRegistry}), its backend (CPU, CUDA, or CUDA when usable), the transformer, the memory policy and the
 * {@link SessionEngine} over them. {@link #close} releases the backend and the model lease; everything else is
 * garbage. The stream operators and the tools build their engines here rather than by hand.
 */
public final class Engine implements AutoCloseable {

    /**
     * What an engine is built from.
     *
     * @param modelDir Hugging Face model folder, or a GGUF file for the tools (a string: the spec travels with stream
     *     jobs)
     * @param device where it runs, and its GPU memory budget
     * @param gpuOrdinal the CUDA device (e.g. Flink's GPU resource index); ignored on the CPU
     * @param threads engine worker threads
     * @param blockSize tokens per KV block
     * @param prefillChunk tokens per forward step while ingesting
     * @param memory the memory policy and its sizes
     * @param format how content and questions are laid out as tokens ({@link PromptFormat#PLAIN} or CONTINUATION)
     * @param segmentWords words per attribution segment
     * @param requantizeQ8 float weights requantized to Q8_0 at load (the {@code --q8} of the tools)
     * @param heads the head pattern the fast attribution tier counts, or null for the default: DuoAttention's own
     *     pattern when it runs, else the calibrated pattern beside the model at {@link DuoSpec#DEFAULT_SPARSITY},
     *     else every head
     */
    public record Spec(
            String modelDir,
            Backends.DeviceSettings device,
            int gpuOrdinal,
            int threads,
            int blockSize,
            int prefillChunk,
            MemorySpec memory,
            Format format,
            int segmentWords,
            boolean requantizeQ8,
            Heads heads)
            implements java.io.Serializable {

        /**
         * A head pattern read from a file ({@code engram calibrate-heads} writes one) at a given sparsity.
         *
         * @param file the pattern's TSV
         * @param sparsity the share of heads read as streaming heads, in [0, 1]
         */
        public record Heads(String file, double sparsity) implements java.io.Serializable {
            public Heads {
                if (file == null || file.isBlank() || !(sparsity >= 0 && sparsity <= 1)) {
                    throw new IllegalArgumentException(
                            "a head pattern needs a file and a sparsity in [0, 1], got " + file + " at " + sparsity);
                }
            }
        }

        /** The prompt layouts an engine can be built with (an enum: the spec travels with stream jobs). */
        public enum Format {
            PLAIN,
            CONTINUATION;

            PromptFormat layout() {
                return this == PLAIN ? PromptFormat.PLAIN : PromptFormat.CONTINUATION;
            }
        }

        public Spec {
            if (modelDir == null || modelDir.isBlank() || device == null || memory == null || format == null) {
                throw new IllegalArgumentException(
                        "a model folder, a device, memory settings and a prompt format are required");
            }
            if (gpuOrdinal < 0 || threads < 1 || blockSize < 1 || prefillChunk < 1 || segmentWords < 1) {
                throw new IllegalArgumentException(
                        "GPU ordinal >= 0 and threads, block size, prefill chunk and segment words "
                                + ">= 1 are required: " + this);
            }
        }

        /** The engine of the stream jobs: weights as stored. */
        public Spec(
                String modelDir,
                Backends.DeviceSettings device,
                int gpuOrdinal,
                int threads,
                int blockSize,
                int prefillChunk,
                MemorySpec memory,
                Format format,
                int segmentWords) {
            this(
                    modelDir,
                    device,
                    gpuOrdinal,
                    threads,
                    blockSize,
                    prefillChunk,
                    memory,
                    format,
                    segmentWords,
                    false,
                    null);
        }

        /**
         * A tool's engine on {@code device}: default block size and prefill chunk, full attention, the plain prompt
         * format (a tool that runs memory policies creates them over {@link Engine#transformer()}).
         */
        public static Spec tool(Path model, Backends.DeviceSettings device, int threads, boolean requantizeQ8) {
            return new Spec(
                    model.toString(),
                    device,
                    0,
                    threads,
                    EngineSettings.DEFAULT_BLOCK_SIZE,
                    EngineSettings.DEFAULT_PREFILL_CHUNK,
                    new MemorySpec.Full(),
                    Format.PLAIN,
                    Segmenter.DEFAULT_WORDS,
                    requantizeQ8,
                    null);
        }

        /** The same with blocks of {@code tokens} tokens. */
        public Spec withBlockSize(int tokens) {
            return new Spec(
                    modelDir,
                    device,
                    gpuOrdinal,
                    threads,
                    tokens,
                    prefillChunk,
                    memory,
                    format,
                    segmentWords,
                    requantizeQ8,
                    heads);
        }

        /** The same on CUDA device {@code ordinal} (known only where the engine opens, e.g. from Flink's GPU resource). */
        public Spec withGpuOrdinal(int ordinal) {
            return new Spec(
                    modelDir,
                    device,
                    ordinal,
                    threads,
                    blockSize,
                    prefillChunk,
                    memory,
                    format,
                    segmentWords,
                    requantizeQ8,
                    heads);
        }
        /** The same with forward steps of {@code tokens} tokens while ingesting. */
        public Spec withPrefillChunk(int tokens) {
            return new Spec(
                    modelDir,
                    device,
                    gpuOrdinal,
                    threads,
                    blockSize,
                    tokens,
                    memory,
                    format,
                    segmentWords,
                    requantizeQ8,
                    heads);
        }

        /** The same with {@code memory}, content and questions laid out as {@code format}, segments of {@code words}. */
        public Spec withMemory(MemorySpec memory, Format format, int words) {
            return new Spec(
                    modelDir,
                    device,
                    gpuOrdinal,
                    threads,
                    blockSize,
                    prefillChunk,
                    memory,
                    format,
                    words,
                    requantizeQ8,
                    heads);
        }

        /** The same with the fast attribution tier counting the heads of {@code heads} (null: the default). */
        public Spec withHeads(Heads heads) {
            return new Spec(
                    modelDir,
                    device,
                    gpuOrdinal,
                    threads,
                    blockSize,
                    prefillChunk,
                    memory,
                    format,
                    segmentWords,
                    requantizeQ8,
                    heads);
        }
    }

    private final ModelRegistry.Lease model;
    private final Backend backend;
    private final Transformer transformer;
    private final MemoryPolicy policy;
    private final SessionEngine session;

    private Engine(
            ModelRegistry.Lease model,
            Backend backend,
            Transformer transformer,
            MemoryPolicy policy,
            SessionEngine session) {
        this.model = model;
        this.backend = backend;
        this.transformer = transformer;
        this.policy = policy;
        this.session = session;
    }

    /** Opens an engine; on failure releases what it took. */
    public static Engine open(Spec spec) {
        ModelRegistry.Lease model = ModelRegistry.acquire(Path.of(spec.modelDir()));
        Backend backend = null;
        try {
            backend = Backends.open(spec.device(), spec.gpuOrdinal(), spec.threads(), spec.requantizeQ8());
            ModelConfig c = model.model().config();
            Transformer t = new Transformer(
                    c,
                    model.model().weights(),
                    backend,
                    new EngineSettings(spec.blockSize(), spec.prefillChunk(), spec.threads(), spec.requantizeQ8()));
            MemoryPolicy policy = spec.memory().create(c, Path.of(spec.modelDir()));
            SessionEngine session = new SessionEngine(
                    t,
                    model.tokenizer(),
                    policy,
                    spec.format().layout(),
                    spec.segmentWords(),
                    retrievalHeads(spec, c, policy));
            return new Engine(model, backend, t, policy, session);
        } catch (RuntimeException | Error e) {
            if (backend != null) {
                backend.close();
            }
            model.close();
            throw e;
        }
    }

    /**
     * The heads whose attention the fast attribution tier counts: DuoAttention's retrieval heads when it runs, else
     * the spec's head pattern, else a calibrated head pattern next to the model ({@code engram calibrate-heads}) at
     * DuoAttention's default sparsity, else every head (null).
     */
    private static HeadPattern retrievalHeads(Spec spec, ModelConfig c, MemoryPolicy policy) {
        if (policy instanceof DuoAttention duo) {
            return duo.pattern();
        }
        boolean named = spec.heads() != null;
        Path file = named ? Path.of(spec.heads().file()) : HeadPattern.besideModel(Path.of(spec.modelDir()));
        if (!Files.isRegularFile(file)) {
            if (named) {
                throw new IllegalArgumentException(
                        "no head pattern at " + file + " (engram calibrate-heads writes one)");
            }
            return null;
        }
        double sparsity = named ? spec.heads().sparsity() : DuoSpec.DEFAULT_SPARSITY;
        return HeadPattern.bySparsity(HeadPattern.read(file, c.layers(), c.kvHeads()), sparsity);
    }

    public SessionEngine session() {
        return session;
    }

    public Transformer transformer() {
        return transformer;
    }

    public Backend backend() {
        return backend;
    }

    public MemoryPolicy policy() {
        return policy;
    }

    public ModelConfig config() {
        return model.model().config();
    }

    /** The model: weights, tokenizer, where it was read from. */
    public Model model() {
        return model.model();
    }

    @Override
    public void close() {
        try {
            backend.close();
        } finally {
            model.close();
        }
    }
}
