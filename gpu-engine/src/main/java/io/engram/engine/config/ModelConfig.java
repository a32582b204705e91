package io.engram.engine.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.engine.backend.RopeStyle;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Hyper-parameters of a Llama-family decoder, validated. Built from a Hugging Face {@code config.json} or from GGUF
 * metadata.
 *
 * @param eosIds every token id that ends generation by default (config and generation_config may list several)
 */
public record ModelConfig(
        String name,
        Architecture architecture,
        int hiddenSize,
        int intermediateSize,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int vocabSize,
        int maxPositions,
        float rmsEps,
        double ropeTheta,
        RopeScaling ropeScaling,
        RopeStyle ropeStyle,
        boolean tiedEmbeddings,
        boolean qkvBias,
        int bosId,
        int[] eosIds) {

    public ModelConfig {
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", layers);
        positive("num_attention_heads", heads);
        positive("num_key_value_heads", kvHeads);
        positive("head_dim", headDim);
        positive("vocab_size", vocabSize);
        positive("max_position_embeddings", maxPositions);
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException(
                    "num_attention_heads %d is not a multiple of num_key_value_heads %d".formatted(heads, kvHeads));
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for RoPE, got " + headDim);
        }
        if (!(rmsEps > 0) || !(ropeTheta > 0)) {
            throw new IllegalArgumentException("rms_norm_eps and rope_theta must be positive");
        }
    }

    private static void positive(String key, int v) {
        if (v <= 0) {
            throw new IllegalArgumentException(key + " must be positive, got " + v);
        }
    }

    public int qDim() {
        return heads * headDim;
    }

    public int kvDim() {
        return kvHeads * headDim;
    }

    /** Query heads per KV head (grouped-query attention). */
    public int groupSize() {
        return heads / kvHeads;
    }

    public boolean isEos(int token) {
        for (int e : eosIds) {
            if (e == token) {
                return true;
            }
        }
        return false;
    }

    /** Reads a Hugging Face {@code config.json} (and {@code generation_config.json} beside it, when present). */
    public static ModelConfig fromHuggingFace(Path configJson) {
        ObjectMapper om = new ObjectMapper();
        JsonNode c;
        try {
            c = om.readTree(configJson.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(configJson, "cannot read config.json: " + e.getMessage(), e);
        }
        JsonNode archs = c.path("architectures");
        if (!archs.isArray() || archs.isEmpty()) {
            throw new ModelFormatException(
                    configJson, "no \"architectures\" list; supported: " + Architecture.supported());
        }
        Architecture arch = Architecture.fromHfClass(archs.get(0).asText(), configJson);
        int hidden = req(c, "hidden_size", configJson);
        int heads = req(c, "num_attention_heads", configJson);
        int kvHeads = c.path("num_key_value_heads").asInt(heads);
        int headDim = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : hidden / heads;
        String act = c.path("hidden_act").asText("silu");
        if (!act.equals("silu")) {
            throw new ModelFormatException(
                    configJson, "hidden_act '%s' is not supported (only silu / SwiGLU)".formatted(act));
        }
        if (c.path("mlp_bias").asBoolean(false)) {
            throw new ModelFormatException(configJson, "mlp_bias=true is not supported");
        }
        boolean qkvBias = arch.qkvBias() || c.path("attention_bias").asBoolean(false);
        List<Integer> eos = new ArrayList<>();
        addIds(c.path("eos_token_id"), eos);
        Path gen = configJson.resolveSibling("generation_config.json");
        int bos = c.path("bos_token_id").asInt(-1);
        if (Files.isRegularFile(gen)) {
            try {
                JsonNode g = om.readTree(gen.toFile());
                addIds(g.path("eos_token_id"), eos);
                if (bos < 0) {
                    bos = g.path("bos_token_id").asInt(-1);
                }
            } catch (IOException e) {
                throw new ModelFormatException(gen, "cannot read generation_config.json: " + e.getMessage(), e);
            }
        }
        return new ModelConfig(
                configJson.toAbsolutePath().getParent().getFileName().toString(),
                arch,
                hidden,
                req(c, "intermediate_size", configJson),
                req(c, "num_hidden_layers", configJson),
                heads,
                kvHeads,
                headDim,
                req(c, "vocab_size", configJson),
                c.path("max_position_embeddings").asInt(2048),
                (float) c.path("rms_norm_eps").asDouble(1e-6),
                c.path("rope_theta").asDouble(10000.0),
                ropeScaling(c.path("rope_scaling"), configJson),
                RopeStyle.HALF,
                c.path("tie_word_embeddings").asBoolean(false),
                qkvBias,
                bos,
                eos.stream().distinct().mapToInt(Integer::intValue).toArray());
    }

    private static void addIds(JsonNode n, List<Integer> out) {
        if (n.isArray()) {
            n.forEach(x -> out.add(x.asInt()));
        } else if (n.isIntegralNumber()) {
            out.add(n.asInt());
        }
    }

    private static int req(JsonNode c, String key, Path file) {
        JsonNode n = c.get(key);
        if (n == null || !n.isIntegralNumber()) {
            throw new ModelFormatException(file, "missing or non-integer \"%s\"".formatted(key));
        }
        return n.asInt();
    }

    static RopeScaling ropeScaling(JsonNode s, Path file) {
        if (s == null || s.isMissingNode() || s.isNull()) {
            return new RopeScaling.None();
        }
        String type = s.hasNonNull("rope_type")
                ? s.get("rope_type").asText()
                : s.path("type").asText("");
        return switch (type) {
            case "default" -> new RopeScaling.None();
            case "linear" -> new RopeScaling.Linear(s.path("factor").asDouble(1.0));
            case "llama3" ->
                new RopeScaling.Llama3(
                        s.path("factor").asDouble(8.0),
                        s.path("low_freq_factor").asDouble(1.0),
                        s.path("high_freq_factor").asDouble(4.0),
                        s.path("original_max_position_embeddings").asInt(8192));
            default ->
                throw new ModelFormatException(
                        file, "rope_scaling type '%s' is not supported; supported: linear, llama3".formatted(type));
        };
    }

    /** The RoPE rotation of this model: its style, its (possibly scaled) inverse frequencies, cached positions. */
    public io.engram.engine.backend.RopeTable ropeTable() {
        double[] inv = ropeScaling().inverseFrequencies(ropeTheta(), headDim());
        return new io.engram.engine.backend.RopeTable(
                ropeStyle(), headDim(), inv, Math.min(Math.max(maxPositions(), 4096), 1 << 16));
    }
}
