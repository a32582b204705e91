package io.engram.engine.model.gguf;

import io.engram.engine.config.Architecture;
import io.engram.engine.tensor.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Tiny random Llama-family models written as GGUF, for comparing our engine with llama.cpp. One seeded set of float
 * weights per {@link Spec} is written in several storage types ({@link #write(Spec, DType, Path)}): matrices in the
 * requested type, norms and biases in F32, as llama.cpp's converters do. Weights are random and written directly in
 * GGUF layout (for {@code llama}: the interleaved q/k row order of ggml's "norm" RoPE), so no permutation is involved.
 *
 * <p>The vocabulary is the 512-token SentencePiece vocabulary of {@code stories260K} when the shared folder holds it,
 * and otherwise a generated one of the same size ({@link #fallbackVocabulary()}); the weights do not depend on which.
 */
public final class TinyGgufModels {
    public static final int VOCAB_SIZE = 512;
    private static final float RMS_EPS = 1e-5f;
    private static final float ROPE_THETA = 10000f;

    private TinyGgufModels() {}

    /**
     * Shape and seed of a tiny model. {@code ffn} and {@code hidden} must be multiples of the block size of every type
     * it is written in (32 for Q8_0/Q4_0, 256 for Q4_K/Q6_K).
     */
    public record Spec(
            String name,
            Architecture architecture,
            int hidden,
            int layers,
            int heads,
            int kvHeads,
            int ffn,
            int contextLength,
            boolean tiedEmbeddings,
            long seed) {

        /** Llama, hidden 64, 2 layers, 4 heads / 2 KV heads of 16, FFN 96, untied classifier. */
        public static final Spec LLAMA_SMALL =
                new Spec("tiny-llama-h64", Architecture.LLAMA, 64, 2, 4, 2, 96, 256, false, 20240601L);
        /** Llama, hidden 256, 2 layers, 4 heads / 2 KV heads of 64, FFN 512, tied: every matrix fits Q4_K/Q6_K blocks. */
        public static final Spec LLAMA_KQUANT =
                new Spec("tiny-llama-h256", Architecture.LLAMA, 256, 2, 4, 2, 512, 256, true, 20240602L);
        /** Qwen2 (q/k/v biases, rotate_half RoPE), hidden 64, 3 layers, 4 heads / 1 KV head of 16, FFN 128. */
        public static final Spec QWEN2_SMALL =
                new Spec("tiny-qwen2-h64", Architecture.QWEN2, 64, 3, 4, 1, 128, 256, false, 20240603L);

        public int headDim() {
            return hidden / heads;
        }
    }

    /** A SentencePiece vocabulary as GGUF stores it; {@code source} says where it came from. */
    public record Vocabulary(List<String> tokens, float[] scores, int[] types, String source) {}

    /** The shared folder ({@code engram.shared.dir}, set by Surefire), or {@code ../shared}. */
    public static Path sharedDir() {
        return Path.of(System.getProperty("engram.shared.dir", "../shared"));
    }

    public static Path storiesGguf(String variant) {
        return sharedDir().resolve("models/stories260K-gguf/stories260K-" + variant + ".gguf");
    }

    /** stories260K's vocabulary when the shared model exists, else {@link #fallbackVocabulary()}. */
    public static Vocabulary vocabulary() {
        Path stories = storiesGguf("f32");
        if (!Files.isRegularFile(stories)) {
            return fallbackVocabulary();
        }
        try (GgufFile f = GgufFile.open(stories)) {
            GgufMetadata m = f.metadata();
            return new Vocabulary(
                    m.getStringList("tokenizer.ggml.tokens"),
                    m.getFloatArray("tokenizer.ggml.scores"),
                    m.getIntArray("tokenizer.ggml.token_type"),
                    stories.toString());
        }
    }

    /**
     * A self-contained 512-token SentencePiece vocabulary laid out like stories260K's: {@code <unk>}, {@code <s>},
     * {@code </s>}, the 256 byte tokens {@code <0x00>}..{@code <0xFF>}, then 253 pieces scored by minus their rank.
     */
    public static Vocabulary fallbackVocabulary() {
        List<String> tokens = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        for (int b = 0; b < 256; b++) {
            tokens.add("<0x%02X>".formatted(b));
        }
        Set<String> pieces = new LinkedHashSet<>();
        String[] words = {
            "the", "and", "was", "to", "a", "he", "she", "it", "they", "said", "day", "one", "upon", "time", "once",
            "there", "little", "big", "girl", "boy", "play", "saw", "with", "her", "his", "in", "on", "happy"
        };
        for (String w : words) {
            pieces.add("\u2581" + w);
        }
        for (String bigram : List.of(
                "th", "he", "in", "er", "an", "re", "nd", "on", "en", "at", "ou", "ed", "ha", "to", "or", "it", "is",
                "hi", "es", "ng")) {
            pieces.add(bigram);
            pieces.add("\u2581" + bigram);
        }
        String chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()";
        for (char c : chars.toCharArray()) {
            pieces.add(String.valueOf(c));
        }
        pieces.add("\u2581");
        for (char a = 'a'; pieces.size() < VOCAB_SIZE - tokens.size(); a++) {
            for (char c = 'a'; c <= 'z' && pieces.size() < VOCAB_SIZE - tokens.size(); c++) {
                pieces.add("\u2581" + a + c);
            }
        }
        tokens.addAll(pieces);
        float[] scores = new float[VOCAB_SIZE];
        int[] types = new int[VOCAB_SIZE];
        types[0] = 2;
        types[1] = 3;
        types[2] = 3;
        for (int i = 3; i < VOCAB_SIZE; i++) {
            types[i] = i < 259 ? 6 : 1;
            scores[i] = i < 259 ? 0f : -(i - 259);
        }
        return new Vocabulary(List.copyOf(tokens), scores, types, "generated");
    }

    /** Tensor names of {@code spec} with their PyTorch-order shapes, in file order. */
    public static Map<String, long[]> shapes(Spec s) {
        Map<String, long[]> m = new LinkedHashMap<>();
        long h = s.hidden(), q = (long) s.heads() * s.headDim(), kv = (long) s.kvHeads() * s.headDim();
        m.put("token_embd.weight", new long[] {VOCAB_SIZE, h});
        for (int i = 0; i < s.layers(); i++) {
            String b = "blk." + i + ".";
            m.put(b + "attn_norm.weight", new long[] {h});
            m.put(b + "attn_q.weight", new long[] {q, h});
            m.put(b + "attn_k.weight", new long[] {kv, h});
            m.put(b + "attn_v.weight", new long[] {kv, h});
            if (s.architecture() == Architecture.QWEN2) {
                m.put(b + "attn_q.bias", new long[] {q});
                m.put(b + "attn_k.bias", new long[] {kv});
                m.put(b + "attn_v.bias", new long[] {kv});
            }
            m.put(b + "attn_output.weight", new long[] {h, q});
            m.put(b + "ffn_norm.weight", new long[] {h});
            m.put(b + "ffn_gate.weight", new long[] {s.ffn(), h});
            m.put(b + "ffn_up.weight", new long[] {s.ffn(), h});
            m.put(b + "ffn_down.weight", new long[] {h, s.ffn()});
        }
        m.put("output_norm.weight", new long[] {h});
        if (!s.tiedEmbeddings()) {
            m.put("output.weight", new long[] {VOCAB_SIZE, h});
        }
        return m;
    }

    /**
     * The seeded random weights of {@code spec}, row-major in PyTorch order. Scales keep activations near unit RMS and
     * logits at a standard deviation of about 3, so greedy choices are rarely near-ties.
     */
    public static Map<String, float[]> randomWeights(Spec s) {
        Random rnd = new Random(s.seed());
        Map<String, float[]> w = new LinkedHashMap<>();
        for (var e : shapes(s).entrySet()) {
            String name = e.getKey();
            long[] shape = e.getValue();
            float[] v = new float[Math.toIntExact(shape.length == 1 ? shape[0] : shape[0] * shape[1])];
            if (name.endsWith("norm.weight")) {
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (1 + 0.1 * rnd.nextGaussian());
                }
            } else if (name.endsWith(".bias")) {
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (0.2 * rnd.nextGaussian());
                }
            } else {
                double std = name.equals("output.weight") || (name.equals("token_embd.weight") && s.tiedEmbeddings())
                        ? 3 / Math.sqrt(s.hidden())
                        : name.equals("token_embd.weight") ? 1 : 1 / Math.sqrt(shape[1]);
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (std * rnd.nextGaussian());
                }
            }
            w.put(name, v);
        }
        return w;
    }

    /** Writes {@code spec}'s random weights with matrices in {@code type}; returns {@code dir/<name>-<type>.gguf}. */
    public static Path write(Spec spec, DType type, Path dir) throws IOException {
        return write(
                spec,
                randomWeights(spec),
                type,
                dir.resolve(spec.name() + "-" + type.name().toLowerCase() + ".gguf"));
    }

    /** Writes one file per type from one set of weights. */
    public static Map<DType, Path> writeVariants(Spec spec, Path dir, DType... types) throws IOException {
        Map<String, float[]> w = randomWeights(spec);
        Map<DType, Path> out = new EnumMap<>(DType.class);
        for (DType t : types) {
            out.put(
                    t,
                    write(spec, w, t, dir.resolve(spec.name() + "-" + t.name().toLowerCase() + ".gguf")));
        }
        return out;
    }

    /** Writes {@code weights} (named and shaped as {@link #shapes}) as a GGUF model of {@code spec} to {@code path}. */
    public static Path write(Spec s, Map<String, float[]> weights, DType type, Path path) throws IOException {
        return writer(s, weights, type).write(path);
    }

    /**
     * A writer holding the whole model (metadata, then every tensor; matrices in {@code type}, vectors in F32), for
     * tests that alter a key or a tensor before writing.
     */
    public static GgufWriter writer(Spec s, Map<String, float[]> weights, DType type) {
        GgufWriter w = metadata(s, type);
        for (var e : shapes(s).entrySet()) {
            DType t = e.getValue().length == 2 ? type : DType.F32;
            w.addTensor(e.getKey(), t, e.getValue(), weights.get(e.getKey()));
        }
        return w;
    }

    /** The metadata llama.cpp needs for {@code spec}, with {@code general.file_type} for {@code type}. */
    public static GgufWriter metadata(Spec s, DType type) {
        String a = s.architecture().ggufName();
        Vocabulary v = vocabulary();
        return new GgufWriter()
                .putString("general.architecture", a)
                .putString("general.name", s.name())
                .putU32("general.file_type", fileType(type))
                .alignment(GgufFile.DEFAULT_ALIGNMENT)
                .putU32(a + ".vocab_size", VOCAB_SIZE)
                .putU32(a + ".context_length", s.contextLength())
                .putU32(a + ".embedding_length", s.hidden())
                .putU32(a + ".block_count", s.layers())
                .putU32(a + ".feed_forward_length", s.ffn())
                .putU32(a + ".rope.dimension_count", s.headDim())
                .putU32(a + ".attention.head_count", s.heads())
                .putU32(a + ".attention.head_count_kv", s.kvHeads())
                .putF32(a + ".attention.layer_norm_rms_epsilon", RMS_EPS)
                .putF32(a + ".rope.freq_base", ROPE_THETA)
                .putString("tokenizer.ggml.model", "llama")
                .putStrings("tokenizer.ggml.tokens", v.tokens())
                .putFloats("tokenizer.ggml.scores", v.scores())
                .putInts("tokenizer.ggml.token_type", v.types())
                .putU32("tokenizer.ggml.bos_token_id", 1)
                .putU32("tokenizer.ggml.eos_token_id", 2)
                .putU32("tokenizer.ggml.unknown_token_id", 0)
                .putBool("tokenizer.ggml.add_bos_token", true)
                .putBool("tokenizer.ggml.add_eos_token", false)
                .putBool("tokenizer.ggml.add_space_prefix", true);
    }

    /** llama.cpp's {@code llama_ftype} for a model whose matrices are {@code type}. */
    static int fileType(DType type) {
        return switch (type) {
            case F32 -> 0;
            case F16 -> 1;
            case Q4_0 -> 2;
            case Q8_0 -> 7;
            case Q4_K -> 15; // MOSTLY_Q4_K_M
            case Q6_K -> 18;
            case BF16 -> 32;
        };
    }
}
