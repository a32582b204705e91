package io.engram.engine.model;

import io.engram.engine.config.ModelConfig;
import io.engram.engine.config.ModelFormatException;
import io.engram.engine.model.safetensors.HfCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A loaded checkpoint: config and memory-mapped weights. Owns the mappings; {@link #close()} releases them, after
 * which the weights (and any {@link Transformer} bound to them on a host backend) must not be used.
 */
public final class Model implements AutoCloseable {
    private final Path source;
    private final ModelConfig config;
    private final ModelWeights weights;
    private final AutoCloseable resources;

    public Model(Path source, ModelConfig config, ModelWeights weights, AutoCloseable resources) {
        this.source = source;
        this.config = config;
        this.weights = weights;
        this.resources = resources;
    }

    /**
     * Opens a Hugging Face model folder ({@code config.json} + safetensors).
     *
     * @throws ModelFormatException when a file is missing, corrupt or unsupported
     */
    public static Model openHuggingFace(Path dir) {
        Path cfg = dir.resolve("config.json");
        if (!Files.isRegularFile(cfg)) {
            throw new ModelFormatException(dir, "no config.json: not a Hugging Face model folder");
        }
        ModelConfig config = ModelConfig.fromHuggingFace(cfg);
        HfCheckpoint ckpt = HfCheckpoint.open(dir);
        try {
            return new Model(dir, config, ckpt.weights(config), ckpt);
        } catch (RuntimeException e) {
            ckpt.close();
            throw e;
        }
    }

    /**
     * Opens a model: a Hugging Face folder, or a {@code .gguf} file.
     *
     * @throws ModelFormatException when a file is missing, corrupt or unsupported
     */
    public static Model open(Path path) {
        if (Files.isDirectory(path)) {
            return openHuggingFace(path);
        }
        if (Files.isRegularFile(path) && path.getFileName().toString().endsWith(".gguf")) {
            io.engram.engine.model.gguf.GgufModel g = io.engram.engine.model.gguf.GgufModel.open(path);
            return new Model(path, g.config(), g.weights(), g);
        }
        throw new ModelFormatException(path, "neither a Hugging Face model folder nor a .gguf file");
    }

    /** The model's tokenizer: tokenizer.json of a folder, or the vocabulary embedded in a GGUF file. */
    public io.engram.engine.tokenizer.Tokenizer tokenizer() {
        if (resources instanceof io.engram.engine.model.gguf.GgufModel g) {
            return io.engram.engine.tokenizer.Tokenizers.fromGguf(g.tokenizer().vocab());
        }
        return io.engram.engine.tokenizer.Tokenizers.fromHuggingFace(source);
    }

    public Path source() {
        return source;
    }

    public ModelConfig config() {
        return config;
    }

    public ModelWeights weights() {
        return weights;
    }

    @Override
    public void close() {
        try {
            resources.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing " + source + ": " + e.getMessage(), e);
        }
    }
}
