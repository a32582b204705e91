package io.engram.engine.model.gguf;

import io.engram.engine.backend.RopeStyle;
import io.engram.engine.config.Architecture;
import io.engram.engine.config.ModelConfig;
import io.engram.engine.config.ModelFormatException;
import io.engram.engine.config.RopeScaling;
import io.engram.engine.model.ModelWeights;
import io.engram.engine.tensor.WeightTensor;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A Llama-family model loaded from one GGUF file: its {@link ModelConfig} from the {@code <arch>.*} metadata, its
 * {@link ModelWeights} from the llama.cpp tensor names ({@code token_embd}, {@code blk.N.attn_q}, ...), and its
 * tokenizer metadata. Owns the file's mapping: the weights are valid until {@link #close()}.
 *
 * <p>Conventions that differ from a Hugging Face checkpoint: GGUF {@code llama} and {@code mistral} store q/k rows in
 * the interleaved RoPE order (ggml "norm", {@link RopeStyle#INTERLEAVED}), {@code qwen2} in the rotate_half order
 * ({@link RopeStyle#HALF}, ggml "neox"); the classifier is tied when {@code output.weight} is absent.
 */
public final class GgufModel implements AutoCloseable {
    private final GgufFile file;
    private final ModelConfig config;
    private final ModelWeights weights;
    private final GgufTokenizerMetadata tokenizer;

    private GgufModel(GgufFile file, ModelConfig config, ModelWeights weights, GgufTokenizerMetadata tokenizer) {
        this.file = file;
        this.config = config;
        this.weights = weights;
        this.tokenizer = tokenizer;
    }

    /**
     * Opens, validates and assembles the model at {@code path}. The caller owns the result and must close it.
     *
     * @throws ModelFormatException when the file is corrupt, lacks a required key or tensor, has a tensor of the wrong
     *     shape, or uses a feature the engine does not support (named in the message)
     */
    public static GgufModel open(Path path) {
        GgufFile f = GgufFile.open(path);
        try {
            ModelConfig c = config(f);
            return new GgufModel(f, c, weights(f, c), GgufTokenizerMetadata.from(f));
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
    }

    /** Builds the model configuration from the metadata of {@code f}. @throws ModelFormatException as {@link #open} */
    public static ModelConfig config(GgufFile f) {
        Path path = f.path();
        GgufMetadata m = f.metadata();
        Architecture arch = Architecture.fromGguf(m.getString("general.architecture"), path);
        String p = arch.ggufName() + ".";
        if (m.getInt(p + "expert_count", 0) > 0) {
            throw new ModelFormatException(
                    path,
                    "mixture-of-experts models (%sexpert_count = %d) are not supported"
                            .formatted(p, m.getInt(p + "expert_count")));
        }
        if (f.hasTensor("rope_freqs.weight")) {
            throw new ModelFormatException(
                    path,
                    "tensor 'rope_freqs.weight' (llama3-style RoPE frequency factors) is not"
                            + " supported; use a model without Llama 3.1 rope scaling");
        }
        int hidden = m.getInt(p + "embedding_length");
        int heads = m.getInt(p + "attention.head_count");
        int kvHeads = m.getInt(p + "attention.head_count_kv", heads);
        int headDim;
        if (m.has(p + "attention.key_length")) {
            headDim = m.getInt(p + "attention.key_length");
        } else if (heads > 0 && hidden % heads == 0) {
            headDim = hidden / heads;
        } else {
            throw new ModelFormatException(
                    path,
                    "%sembedding_length %d is not a multiple of %sattention.head_count %d"
                            .formatted(p, hidden, p, heads));
        }
        int valueLength = m.getInt(p + "attention.value_length", headDim);
        if (valueLength != headDim) {
            throw new ModelFormatException(
                    path,
                    "%sattention.value_length %d differs from the key length %d; not supported"
                            .formatted(p, valueLength, headDim));
        }
        int ropeDims = m.getInt(p + "rope.dimension_count", headDim);
        if (ropeDims != headDim) {
            throw new ModelFormatException(
                    path,
                    "%srope.dimension_count %d differs from the head size %d; partial rotary embeddings are not supported"
                            .formatted(p, ropeDims, headDim));
        }
        int vocab;
        if (m.has(p + "vocab_size")) {
            vocab = m.getInt(p + "vocab_size");
        } else if (m.has("tokenizer.ggml.tokens")) {
            vocab = m.getStringList("tokenizer.ggml.tokens").size();
        } else {
            vocab = f.tensor("token_embd.weight").rows();
        }
        int bos = m.has("tokenizer.ggml.bos_token_id") ? m.getInt("tokenizer.ggml.bos_token_id") : -1;
        int[] eos = Arrays.stream(new String[] {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"})
                .filter(m::has)
                .mapToInt(m::getInt)
                .distinct()
                .toArray();
        RopeStyle style = switch (arch) {
            case LLAMA, MISTRAL -> RopeStyle.INTERLEAVED;
            case QWEN2 -> RopeStyle.HALF;
        };
        String fileName = path.getFileName() == null
                ? path.toString()
                : path.getFileName().toString();
        try {
            return new ModelConfig(
                    m.getString("general.name", fileName),
                    arch,
                    hidden,
                    m.getInt(p + "feed_forward_length"),
                    m.getInt(p + "block_count"),
                    heads,
                    kvHeads,
                    headDim,
                    vocab,
                    m.getInt(p + "context_length"),
                    m.getFloat(p + "attention.layer_norm_rms_epsilon"),
                    m.getFloat(p + "rope.freq_base", 10000f),
                    ropeScaling(f, p),
                    style,
                    !f.hasTensor("output.weight"),
                    f.hasTensor("blk.0.attn_q.bias"),
                    bos,
                    eos);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(path, "invalid hyper-parameters: " + e.getMessage(), e);
        }
    }

    /** llama.cpp's reading: type defaults to linear; a factor that is absent, 0 or 1 means no scaling. */
    private static RopeScaling ropeScaling(GgufFile f, String p) {
        GgufMetadata m = f.metadata();
        String type = m.getString(p + "rope.scaling.type", "linear");
        float factor = m.has(p + "rope.scaling.factor")
                ? m.getFloat(p + "rope.scaling.factor")
                : m.getFloat(p + "rope.scale_linear", 0f);
        return switch (type) {
            case "none" -> new RopeScaling.None();
            case "linear" -> factor == 0f || factor == 1f ? new RopeScaling.None() : new RopeScaling.Linear(factor);
            default ->
                throw new ModelFormatException(
                        f.path(),
                        "%srope.scaling.type '%s' is not supported; supported: none, linear".formatted(p, type));
        };
    }

    /** Assembles the weights of {@code f} by their llama.cpp names and checks every shape against {@code c}. */
    public static ModelWeights weights(GgufFile f, ModelConfig c) {
        WeightTensor emb = require(f, "token_embd.weight");
        ModelWeights.LayerWeights[] layers = new ModelWeights.LayerWeights[c.layers()];
        for (int i = 0; i < c.layers(); i++) {
            String b = "blk." + i + ".";
            if (!f.hasTensor(b + "attn_q.weight") && f.hasTensor(b + "attn_qkv.weight")) {
                throw new ModelFormatException(
                        f.path(), "tensor '%sattn_qkv.weight' (fused q/k/v) is not supported".formatted(b));
            }
            layers[i] = new ModelWeights.LayerWeights(
                    require(f, b + "attn_norm.weight"),
                    require(f, b + "attn_q.weight"),
                    require(f, b + "attn_k.weight"),
                    require(f, b + "attn_v.weight"),
                    c.qkvBias() ? require(f, b + "attn_q.bias") : null,
                    c.qkvBias() ? require(f, b + "attn_k.bias") : null,
                    c.qkvBias() ? require(f, b + "attn_v.bias") : null,
                    require(f, b + "attn_output.weight"),
                    require(f, b + "ffn_norm.weight"),
                    require(f, b + "ffn_gate.weight"),
                    require(f, b + "ffn_up.weight"),
                    require(f, b + "ffn_down.weight"));
        }
        WeightTensor head = c.tiedEmbeddings() ? emb : require(f, "output.weight");
        ModelWeights w = new ModelWeights(emb, layers, require(f, "output_norm.weight"), head);
        w.validate(c, f.path());
        if (f.hasTensor("blk." + c.layers() + ".attn_norm.weight")) {
            throw new ModelFormatException(
                    f.path(),
                    "the file has tensors for layer %d but %s.block_count is %d"
                            .formatted(c.layers(), c.architecture().ggufName(), c.layers()));
        }
        return w;
    }

    private static WeightTensor require(GgufFile f, String name) {
        if (!f.hasTensor(name)) {
            throw new ModelFormatException(f.path(), "tensor '%s' is missing from the GGUF file".formatted(name));
        }
        return f.tensor(name);
    }

    public GgufFile file() {
        return file;
    }

    public ModelConfig config() {
        return config;
    }

    /** Views into the mapping; valid until {@link #close()}. */
    public ModelWeights weights() {
        return weights;
    }

    public GgufTokenizerMetadata tokenizer() {
        return tokenizer;
    }

    @Override
    public void close() {
        file.close();
    }
}
