package io.engram.engine.model.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.engine.config.ModelConfig;
import io.engram.engine.config.ModelFormatException;
import io.engram.engine.model.ModelWeights;
import io.engram.engine.safetensors.SafetensorsFile;
import io.engram.engine.tensor.WeightTensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The weights of a Hugging Face model folder: {@code model.safetensors}, or shards listed by
 * {@code model.safetensors.index.json}. Owns the mappings of every shard; closes them in {@link #close()}.
 */
public final class HfCheckpoint implements AutoCloseable {
    private final Path dir;
    private final List<SafetensorsFile> files;
    private final Map<String, WeightTensor> tensors;

    private HfCheckpoint(Path dir, List<SafetensorsFile> files, Map<String, WeightTensor> tensors) {
        this.dir = dir;
        this.files = files;
        this.tensors = tensors;
    }

    public static HfCheckpoint open(Path dir) {
        Path index = dir.resolve("model.safetensors.index.json");
        Path single = dir.resolve("model.safetensors");
        List<Path> shards = new ArrayList<>();
        Map<String, String> weightMap = null;
        if (Files.isRegularFile(index)) {
            try {
                JsonNode wm = new ObjectMapper().readTree(index.toFile()).path("weight_map");
                if (!wm.isObject() || wm.isEmpty()) {
                    throw new ModelFormatException(index, "no \"weight_map\" object");
                }
                weightMap = new LinkedHashMap<>();
                TreeSet<String> names = new TreeSet<>();
                for (var it = wm.fields(); it.hasNext(); ) {
                    var e = it.next();
                    weightMap.put(e.getKey(), e.getValue().asText());
                    names.add(e.getValue().asText());
                }
                for (String n : names) {
                    Path shard = dir.resolve(n).normalize();
                    if (!shard.startsWith(dir.normalize())) {
                        throw new ModelFormatException(index, "shard name '%s' leaves the model folder".formatted(n));
                    }
                    if (!Files.isRegularFile(shard)) {
                        throw new ModelFormatException(
                                shard, "shard listed in model.safetensors.index.json is missing");
                    }
                    shards.add(shard);
                }
            } catch (IOException e) {
                throw new ModelFormatException(index, "cannot read index: " + e.getMessage(), e);
            }
        } else if (Files.isRegularFile(single)) {
            shards.add(single);
        } else {
            throw new ModelFormatException(dir, "no model.safetensors or model.safetensors.index.json in the folder");
        }
        List<SafetensorsFile> opened = new ArrayList<>();
        Map<String, WeightTensor> all = new LinkedHashMap<>();
        try {
            for (Path p : shards) {
                SafetensorsFile f = SafetensorsFile.open(p);
                opened.add(f);
                for (var e : f.tensors().entrySet()) {
                    if (weightMap != null && !p.getFileName().toString().equals(weightMap.get(e.getKey()))) {
                        throw new ModelFormatException(
                                p, "tensor '%s' is not listed for this shard in the index".formatted(e.getKey()));
                    }
                    if (all.put(e.getKey(), e.getValue()) != null) {
                        throw new ModelFormatException(
                                p, "tensor '%s' appears in more than one shard".formatted(e.getKey()));
                    }
                }
            }
            if (weightMap != null) {
                for (String name : weightMap.keySet()) {
                    if (!all.containsKey(name)) {
                        throw new ModelFormatException(
                                index,
                                "tensor '%s' is listed in the index but missing from %s"
                                        .formatted(name, weightMap.get(name)));
                    }
                }
            }
        } catch (RuntimeException e) {
            opened.forEach(SafetensorsFile::close);
            throw e;
        }
        return new HfCheckpoint(dir, opened, all);
    }

    public Map<String, WeightTensor> tensors() {
        return tensors;
    }

    /** Assembles the decoder's weights by their Hugging Face names and checks their shapes. */
    public ModelWeights weights(ModelConfig c) {
        WeightTensor emb = require("model.embed_tokens.weight");
        ModelWeights.LayerWeights[] layers = new ModelWeights.LayerWeights[c.layers()];
        for (int i = 0; i < c.layers(); i++) {
            String p = "model.layers." + i + ".";
            layers[i] = new ModelWeights.LayerWeights(
                    require(p + "input_layernorm.weight"),
                    require(p + "self_attn.q_proj.weight"),
                    require(p + "self_attn.k_proj.weight"),
                    require(p + "self_attn.v_proj.weight"),
                    c.qkvBias() ? require(p + "self_attn.q_proj.bias") : null,
                    c.qkvBias() ? require(p + "self_attn.k_proj.bias") : null,
                    c.qkvBias() ? require(p + "self_attn.v_proj.bias") : null,
                    require(p + "self_attn.o_proj.weight"),
                    require(p + "post_attention_layernorm.weight"),
                    require(p + "mlp.gate_proj.weight"),
                    require(p + "mlp.up_proj.weight"),
                    require(p + "mlp.down_proj.weight"));
        }
        WeightTensor head = tensors.get("lm_head.weight");
        if (head == null) {
            if (!c.tiedEmbeddings()) {
                throw new ModelFormatException(
                        dir, "tensor 'lm_head.weight' is missing and tie_word_embeddings is false");
            }
            head = emb;
        }
        ModelWeights w = new ModelWeights(emb, layers, require("model.norm.weight"), head);
        w.validate(c, dir);
        return w;
    }

    private WeightTensor require(String name) {
        WeightTensor t = tensors.get(name);
        if (t == null) {
            throw new ModelFormatException(dir, "tensor '%s' is missing from the checkpoint".formatted(name));
        }
        return t;
    }

    @Override
    public void close() {
        files.forEach(SafetensorsFile::close);
    }
}
