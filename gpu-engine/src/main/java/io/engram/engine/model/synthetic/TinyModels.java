package io.engram.engine.model.synthetic;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.engram.engine.safetensors.SafetensorsWriter;
import io.engram.engine.tensor.DType;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Writes tiny random models in the real Hugging Face layout ({@code config.json}, {@code model.safetensors} or shards
 * with an index, {@code tokenizer.json} with a trained byte-level BPE, {@code tokenizer_config.json} with a ChatML
 * template, {@code generation_config.json}). Deterministic: the same variant, dtype and seed give byte-identical files,
 * so goldens computed once by an independent implementation stay valid.
 */
public final class TinyModels {
    /** Token merges learned for the synthetic tokenizer. */
    static final int MERGES = 200;

    static final int VOCAB = 512;
    static final String[] SPECIALS = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

    /** The architectures the generator covers; each exercises a different code path. */
    public enum Variant {
        /** Llama, multi-head (4/4), untied head, linear RoPE scaling x2. */
        LLAMA(
                "LlamaForCausalLM",
                "llama",
                64,
                128,
                2,
                4,
                4,
                16,
                false,
                false,
                "{\"type\":\"linear\",\"factor\":2.0}",
                10000.0),
        /** Llama with grouped-query attention (4/2), tied embeddings, llama3 RoPE scaling. */
        LLAMA_GQA(
                "LlamaForCausalLM",
                "llama",
                64,
                160,
                3,
                4,
                2,
                16,
                true,
                false,
                "{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":64}",
                500000.0),
        /** Qwen2: q/k/v biases, GQA 4/2, tied embeddings, theta 1e6. */
        QWEN2("Qwen2ForCausalLM", "qwen2", 64, 128, 2, 4, 2, 16, true, true, null, 1000000.0),
        /** Mistral: GQA 8/2, head dim 8. */
        MISTRAL("MistralForCausalLM", "mistral", 64, 96, 2, 8, 2, 8, false, false, null, 10000.0);

        final String hfClass;
        final String modelType;
        final int hidden;
        final int inter;
        final int layers;
        final int heads;
        final int kvHeads;
        final int headDim;
        final boolean tied;
        final boolean bias;
        final String ropeScaling;
        final double theta;

        Variant(
                String hfClass,
                String modelType,
                int hidden,
                int inter,
                int layers,
                int heads,
                int kvHeads,
                int headDim,
                boolean tied,
                boolean bias,
                String ropeScaling,
                double theta) {
            this.hfClass = hfClass;
            this.modelType = modelType;
            this.hidden = hidden;
            this.inter = inter;
            this.layers = layers;
            this.heads = heads;
            this.kvHeads = kvHeads;
            this.headDim = headDim;
            this.tied = tied;
            this.bias = bias;
            this.ropeScaling = ropeScaling;
            this.theta = theta;
        }
    }

    private TinyModels() {}

    /** Writes {@code variant} into {@code dir} (created) with weights stored as {@code dtype}. */
    public static Path write(Path dir, Variant variant, DType dtype, long seed) {
        return write(dir, variant, dtype, seed, 1);
    }

    /**
     * Like {@link #write(Path, Variant, DType, long)}, split into {@code shards} safetensors files with
     * {@code model.safetensors.index.json} when {@code shards > 1}.
     */
    public static Path write(Path dir, Variant v, DType dtype, long seed, int shards) {
        try {
            Files.createDirectories(dir);
            ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
            writeTokenizer(dir, om);
            writeConfig(dir, v, dtype, om);
            Map<String, float[]> tensors = new LinkedHashMap<>();
            Map<String, long[]> shapes = new LinkedHashMap<>();
            SplittableRandom rnd = new SplittableRandom(seed);
            add(
                    tensors,
                    shapes,
                    "model.embed_tokens.weight",
                    new long[] {VOCAB, v.hidden},
                    gaussian(rnd, VOCAB * v.hidden, 1.0));
            for (int l = 0; l < v.layers; l++) {
                String p = "model.layers." + l + ".";
                int q = v.heads * v.headDim;
                int kv = v.kvHeads * v.headDim;
                add(tensors, shapes, p + "input_layernorm.weight", new long[] {v.hidden}, norm(rnd, v.hidden));
                add(tensors, shapes, p + "self_attn.q_proj.weight", new long[] {q, v.hidden}, matrix(rnd, q, v.hidden));
                add(
                        tensors,
                        shapes,
                        p + "self_attn.k_proj.weight",
                        new long[] {kv, v.hidden},
                        matrix(rnd, kv, v.hidden));
                add(
                        tensors,
                        shapes,
                        p + "self_attn.v_proj.weight",
                        new long[] {kv, v.hidden},
                        matrix(rnd, kv, v.hidden));
                if (v.bias) {
                    add(tensors, shapes, p + "self_attn.q_proj.bias", new long[] {q}, gaussian(rnd, q, 0.5));
                    add(tensors, shapes, p + "self_attn.k_proj.bias", new long[] {kv}, gaussian(rnd, kv, 0.5));
                    add(tensors, shapes, p + "self_attn.v_proj.bias", new long[] {kv}, gaussian(rnd, kv, 0.5));
                }
                add(tensors, shapes, p + "self_attn.o_proj.weight", new long[] {v.hidden, q}, matrix(rnd, v.hidden, q));
                add(tensors, shapes, p + "post_attention_layernorm.weight", new long[] {v.hidden}, norm(rnd, v.hidden));
                add(
                        tensors,
                        shapes,
                        p + "mlp.gate_proj.weight",
                        new long[] {v.inter, v.hidden},
                        matrix(rnd, v.inter, v.hidden));
                add(
                        tensors,
                        shapes,
                        p + "mlp.up_proj.weight",
                        new long[] {v.inter, v.hidden},
                        matrix(rnd, v.inter, v.hidden));
                add(
                        tensors,
                        shapes,
                        p + "mlp.down_proj.weight",
                        new long[] {v.hidden, v.inter},
                        matrix(rnd, v.hidden, v.inter));
            }
            add(tensors, shapes, "model.norm.weight", new long[] {v.hidden}, norm(rnd, v.hidden));
            if (!v.tied) {
                add(tensors, shapes, "lm_head.weight", new long[] {VOCAB, v.hidden}, matrix(rnd, VOCAB, v.hidden));
            }
            writeWeights(dir, dtype, tensors, shapes, shards, om);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("writing tiny model to " + dir, e);
        }
    }

    private static void add(Map<String, float[]> t, Map<String, long[]> s, String name, long[] shape, float[] data) {
        t.put(name, data);
        s.put(name, shape);
    }

    private static float[] gaussian(SplittableRandom rnd, int n, double std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rnd.nextGaussian() * std);
        }
        return a;
    }

    /** Std 2/sqrt(in): large enough that logits are peaked and greedy choices have clear margins. */
    private static float[] matrix(SplittableRandom rnd, int out, int in) {
        return gaussian(rnd, out * in, 2.0 / Math.sqrt(in));
    }

    private static float[] norm(SplittableRandom rnd, int n) {
        float[] a = gaussian(rnd, n, 0.2);
        for (int i = 0; i < n; i++) {
            a[i] += 1f;
        }
        return a;
    }

    private static void writeWeights(
            Path dir,
            DType dtype,
            Map<String, float[]> tensors,
            Map<String, long[]> shapes,
            int shards,
            ObjectMapper om)
            throws IOException {
        List<String> names = new ArrayList<>(tensors.keySet());
        if (shards <= 1) {
            SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
            for (String n : names) {
                w.add(n, dtype, shapes.get(n), tensors.get(n));
            }
            w.write(dir.resolve("model.safetensors"));
            return;
        }
        ObjectNode index = om.createObjectNode();
        index.putObject("metadata").put("total_size", 0);
        ObjectNode map = index.putObject("weight_map");
        int per = (names.size() + shards - 1) / shards;
        for (int s = 0; s < shards; s++) {
            String file = "model-%05d-of-%05d.safetensors".formatted(s + 1, shards);
            SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
            for (String n : names.subList(Math.min(s * per, names.size()), Math.min((s + 1) * per, names.size()))) {
                w.add(n, dtype, shapes.get(n), tensors.get(n));
                map.put(n, file);
            }
            w.write(dir.resolve(file));
        }
        om.writeValue(dir.resolve("model.safetensors.index.json").toFile(), index);
    }

    private static void writeConfig(Path dir, Variant v, DType dtype, ObjectMapper om) throws IOException {
        ObjectNode c = om.createObjectNode();
        c.putArray("architectures").add(v.hfClass);
        c.put("model_type", v.modelType);
        c.put("hidden_size", v.hidden);
        c.put("intermediate_size", v.inter);
        c.put("num_hidden_layers", v.layers);
        c.put("num_attention_heads", v.heads);
        c.put("num_key_value_heads", v.kvHeads);
        c.put("head_dim", v.headDim);
        c.put("vocab_size", VOCAB);
        c.put("max_position_embeddings", 256);
        c.put("rms_norm_eps", 1e-5);
        c.put("rope_theta", v.theta);
        if (v.ropeScaling == null) {
            c.putNull("rope_scaling");
        } else {
            c.set("rope_scaling", om.readTree(v.ropeScaling));
        }
        c.put("tie_word_embeddings", v.tied);
        c.put("hidden_act", "silu");
        c.put("attention_bias", v.bias && !v.hfClass.startsWith("Qwen2") ? true : false);
        c.put("bos_token_id", 256 + MERGES); // <|endoftext|>
        c.put("eos_token_id", 256 + MERGES + 2); // <|im_end|>
        c.put(
                "torch_dtype",
                switch (dtype) {
                    case F32 -> "float32";
                    case F16 -> "float16";
                    case BF16 -> "bfloat16";
                    default ->
                        throw new IllegalArgumentException("tiny models are written as F32, F16 or BF16, not " + dtype);
                });
        if (v.hfClass.startsWith("Qwen2")) {
            c.put("use_sliding_window", false);
        }
        om.writeValue(dir.resolve("config.json").toFile(), c);
        ObjectNode g = om.createObjectNode();
        g.put("bos_token_id", 256 + MERGES);
        g.put("eos_token_id", 256 + MERGES + 2);
        g.put("do_sample", false);
        om.writeValue(dir.resolve("generation_config.json").toFile(), g);
    }

    private static String corpus() throws IOException {
        try (InputStream in = TinyModels.class.getResourceAsStream("corpus.txt")) {
            if (in == null) {
                throw new IOException("resource corpus.txt missing from the engine jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static void writeTokenizer(Path dir, ObjectMapper om) throws IOException {
        BpeTrainer.Result bpe = BpeTrainer.train(corpus(), MERGES);
        ObjectNode t = om.createObjectNode();
        t.put("version", "1.0");
        t.putNull("truncation");
        t.putNull("padding");
        ArrayNode added = t.putArray("added_tokens");
        int firstSpecial = bpe.vocab().size();
        for (int i = 0; i < SPECIALS.length; i++) {
            ObjectNode a = added.addObject();
            a.put("id", firstSpecial + i);
            a.put("content", SPECIALS[i]);
            a.put("single_word", false);
            a.put("lstrip", false);
            a.put("rstrip", false);
            a.put("normalized", false);
            a.put("special", true);
        }
        t.putNull("normalizer");
        ObjectNode pre = t.putObject("pre_tokenizer");
        pre.put("type", "ByteLevel");
        pre.put("add_prefix_space", false);
        pre.put("trim_offsets", true);
        pre.put("use_regex", true);
        ObjectNode post = t.putObject("post_processor");
        post.put("type", "ByteLevel");
        post.put("add_prefix_space", false);
        post.put("trim_offsets", false);
        post.put("use_regex", true);
        ObjectNode dec = t.putObject("decoder");
        dec.put("type", "ByteLevel");
        dec.put("add_prefix_space", false);
        dec.put("trim_offsets", true);
        dec.put("use_regex", true);
        ObjectNode model = t.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        ObjectNode vocab = model.putObject("vocab");
        bpe.vocab().forEach(vocab::put);
        for (int i = 0; i < SPECIALS.length; i++) {
            vocab.put(SPECIALS[i], firstSpecial + i);
        }
        ArrayNode merges = model.putArray("merges");
        bpe.merges().forEach(merges::add);
        om.writeValue(dir.resolve("tokenizer.json").toFile(), t);

        ObjectNode tc = om.createObjectNode();
        tc.put("bos_token", SPECIALS[0]);
        tc.put("eos_token", SPECIALS[2]);
        tc.put("pad_token", SPECIALS[0]);
        tc.putNull("unk_token");
        tc.put("add_bos_token", false);
        tc.put("model_max_length", 256);
        tc.put("tokenizer_class", "PreTrainedTokenizerFast");
        tc.put(
                "chat_template",
                "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}");
        om.writeValue(dir.resolve("tokenizer_config.json").toFile(), tc);
    }

    /** Writes the tiny models named on the command line: {@code DIR VARIANT DTYPE SEED}. Used to feed the reference script. */
    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: TinyModels DIR VARIANT(" + java.util.Arrays.toString(Variant.values())
                    + ") DTYPE(F32|F16|BF16) SEED");
            System.exit(2);
        }
        write(Path.of(args[0]), Variant.valueOf(args[1]), DType.valueOf(args[2]), Long.parseLong(args[3]));
    }
}
