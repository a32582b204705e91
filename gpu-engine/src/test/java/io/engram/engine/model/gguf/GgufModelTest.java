package io.engram.engine.model.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.backend.RopeStyle;
import io.engram.engine.config.Architecture;
import io.engram.engine.config.ModelConfig;
import io.engram.engine.config.ModelFormatException;
import io.engram.engine.config.RopeScaling;
import io.engram.engine.model.ModelWeights;
import io.engram.engine.tensor.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Model assembly from GGUF metadata and tensor names: the real stories260K files, the tiny models, bad models. */
class GgufModelTest {
    @TempDir
    Path tmp;

    static Path stories(String variant) {
        Path p = TinyGgufModels.storiesGguf(variant);
        Assumptions.assumeTrue(Files.isRegularFile(p), "no model at " + p + "; skipping");
        return p;
    }

    @Test
    void storiesConfigIsTheDocumentedOneInBothFiles() {
        for (String variant : new String[] {"f32", "q8_0"}) {
            try (GgufModel m = GgufModel.open(stories(variant))) {
                ModelConfig c = m.config();
                assertThat(c.name()).isEqualTo("stories260K");
                assertThat(c.architecture()).isEqualTo(Architecture.LLAMA);
                assertThat(c.hiddenSize()).isEqualTo(64);
                assertThat(c.intermediateSize()).isEqualTo(172);
                assertThat(c.layers()).isEqualTo(5);
                assertThat(c.heads()).isEqualTo(8);
                assertThat(c.kvHeads()).isEqualTo(4);
                assertThat(c.headDim()).isEqualTo(8);
                assertThat(c.vocabSize()).isEqualTo(512);
                assertThat(c.maxPositions()).isEqualTo(512);
                assertThat(c.rmsEps()).isEqualTo(1e-5f);
                assertThat(c.ropeTheta()).isEqualTo(10000.0);
                assertThat(c.ropeScaling()).isEqualTo(new RopeScaling.None());
                assertThat(c.ropeStyle()).isEqualTo(RopeStyle.INTERLEAVED);
                assertThat(c.tiedEmbeddings()).isTrue();
                assertThat(c.qkvBias()).isFalse();
                assertThat(c.bosId()).isEqualTo(1);
                assertThat(c.eosIds()).containsExactly(2);

                ModelWeights w = m.weights();
                assertThat(w.lmHead()).as("tied classifier").isSameAs(w.embedding());
                assertThat(w.layers()).hasSize(5);
                assertThat(w.layers()[4].wDown().name()).isEqualTo("blk.4.ffn_down.weight");
                assertThat(w.layers()[4].wDown().dtype()).isEqualTo(DType.F32);
                assertThat(w.layers()[0].wq().dtype()).isEqualTo(variant.equals("f32") ? DType.F32 : DType.Q8_0);
                assertThat(w.layers()[0].bq()).isNull();
            }
        }
    }

    @Test
    void storiesTokenizerMetadata() {
        try (GgufModel m = GgufModel.open(stories("f32"))) {
            GgufTokenizerMetadata t = m.tokenizer();
            assertThat(t.model()).isEqualTo("llama");
            assertThat(t.pre()).isNull();
            assertThat(t.tokens()).hasSize(512);
            assertThat(t.tokens().get(259)).isEqualTo("\u2581t");
            assertThat(t.tokens().get(13)).isEqualTo("<0x0A>");
            assertThat(t.scores()).hasSize(512);
            assertThat(Float.floatToRawIntBits(t.scores()[259]))
                    .as("-0.0 kept")
                    .isEqualTo(Float.floatToRawIntBits(-0f));
            assertThat(t.scores()[511]).isNegative();
            assertThat(t.tokenTypes()).hasSize(512).startsWith(2, 3, 3, 6);
            assertThat(t.tokenTypes()[258]).isEqualTo(6);
            assertThat(t.tokenTypes()[259]).isEqualTo(1);
            assertThat(t.merges()).isEmpty();
            assertThat(t.bosId()).isEqualTo(1);
            assertThat(t.eosId()).isEqualTo(2);
            assertThat(t.unkId()).isEqualTo(0);
            assertThat(t.addBos()).isTrue();
            assertThat(t.addEos()).isFalse();
            assertThat(t.addSpacePrefix()).isTrue();
            assertThat(t.chatTemplate()).isNull();
        }
    }

    @Test
    void tinyModelConfigsFollowTheirSpecs() throws IOException {
        for (TinyGgufModels.Spec s : new TinyGgufModels.Spec[] {
            TinyGgufModels.Spec.LLAMA_SMALL, TinyGgufModels.Spec.LLAMA_KQUANT, TinyGgufModels.Spec.QWEN2_SMALL
        }) {
            try (GgufModel m = GgufModel.open(TinyGgufModels.write(s, DType.F32, tmp))) {
                ModelConfig c = m.config();
                assertThat(c.name()).isEqualTo(s.name());
                assertThat(c.architecture()).isEqualTo(s.architecture());
                assertThat(new int[] {
                            c.hiddenSize(),
                            c.layers(),
                            c.heads(),
                            c.kvHeads(),
                            c.headDim(),
                            c.intermediateSize(),
                            c.vocabSize(),
                            c.maxPositions()
                        })
                        .as(s.name())
                        .containsExactly(
                                s.hidden(),
                                s.layers(),
                                s.heads(),
                                s.kvHeads(),
                                s.headDim(),
                                s.ffn(),
                                TinyGgufModels.VOCAB_SIZE,
                                s.contextLength());
                assertThat(c.tiedEmbeddings()).isEqualTo(s.tiedEmbeddings());
                boolean qwen = s.architecture() == Architecture.QWEN2;
                assertThat(c.qkvBias()).isEqualTo(qwen);
                assertThat(c.ropeStyle()).isEqualTo(qwen ? RopeStyle.HALF : RopeStyle.INTERLEAVED);
                assertThat(m.weights().layers()[0].bk() != null).isEqualTo(qwen);
                assertThat(m.tokenizer().tokens()).hasSize(TinyGgufModels.VOCAB_SIZE);
            }
        }
    }

    @Test
    void fallbackVocabularyIsAValidSpmLayout() {
        TinyGgufModels.Vocabulary v = TinyGgufModels.fallbackVocabulary();
        assertThat(v.tokens()).hasSize(512).doesNotHaveDuplicates().startsWith("<unk>", "<s>", "</s>", "<0x00>");
        assertThat(v.tokens().get(258)).isEqualTo("<0xFF>");
        assertThat(v.types()).hasSize(512);
        assertThat(v.scores()).hasSize(512);
    }

    private Path variant(String name, UnaryOperator<GgufWriter> change) throws IOException {
        TinyGgufModels.Spec s = TinyGgufModels.Spec.LLAMA_SMALL;
        GgufWriter w = TinyGgufModels.writer(s, TinyGgufModels.randomWeights(s), DType.F32);
        return change.apply(w).write(tmp.resolve(name + ".gguf"));
    }

    private static void assertRejected(Path p, String... parts) {
        assertThatThrownBy(() -> GgufModel.open(p).close())
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(p.toString())
                .hasMessageContainingAll(parts);
    }

    @Test
    void optionalKeysAndScaling() throws IOException {
        Path linear = variant(
                "linear",
                w -> w.putString("llama.rope.scaling.type", "linear").putF32("llama.rope.scaling.factor", 4f));
        try (GgufModel m = GgufModel.open(linear)) {
            assertThat(m.config().ropeScaling()).isEqualTo(new RopeScaling.Linear(4.0));
        }
        Path defaults = variant(
                "defaults",
                w -> w.remove("llama.rope.freq_base").remove("llama.vocab_size").remove("tokenizer.ggml.bos_token_id"));
        try (GgufModel m = GgufModel.open(defaults)) {
            assertThat(m.config().ropeTheta()).isEqualTo(10000.0);
            assertThat(m.config().vocabSize()).as("from the token list").isEqualTo(512);
            assertThat(m.config().bosId()).isEqualTo(-1);
        }
        Path eot = variant("eot", w -> w.putU32("tokenizer.ggml.eot_token_id", 7));
        try (GgufModel m = GgufModel.open(eot)) {
            assertThat(m.config().eosIds()).containsExactly(2, 7);
        }
    }

    @Test
    void unsupportedFeaturesAreRefusedByName() throws IOException {
        assertRejected(
                variant("ropefreqs", w -> w.addTensor("rope_freqs.weight", DType.F32, new long[] {8}, new float[8])),
                "'rope_freqs.weight'",
                "llama3-style",
                "not supported");
        assertRejected(
                variant(
                        "yarn",
                        w -> w.putString("llama.rope.scaling.type", "yarn").putF32("llama.rope.scaling.factor", 4f)),
                "llama.rope.scaling.type 'yarn' is not supported");
        assertRejected(
                variant("moe", w -> w.putU32("llama.expert_count", 8)), "mixture-of-experts", "llama.expert_count = 8");
        assertRejected(
                variant("arch", w -> w.putString("general.architecture", "gpt2")),
                "unsupported general.architecture 'gpt2'",
                "llama, qwen2, mistral");
        assertRejected(
                variant("partial", w -> w.putU32("llama.rope.dimension_count", 8)),
                "llama.rope.dimension_count 8 differs from the head size 16");
        assertRejected(
                variant(
                        "fused",
                        w -> w.removeTensor("blk.0.attn_q.weight")
                                .addTensor(
                                        "blk.0.attn_qkv.weight", DType.F32, new long[] {128, 64}, new float[128 * 64])),
                "'blk.0.attn_qkv.weight' (fused q/k/v) is not supported");
    }

    @Test
    void missingOrMisshapenPiecesAreNamed() throws IOException {
        assertRejected(
                variant("nokey", w -> w.remove("llama.embedding_length")),
                "missing metadata key 'llama.embedding_length'");
        assertRejected(
                variant("keytype", w -> w.putString("llama.block_count", "2")),
                "metadata key 'llama.block_count' has type STRING; expected an integer");
        assertRejected(
                variant("notensor", w -> w.removeTensor("blk.1.ffn_up.weight")),
                "tensor 'blk.1.ffn_up.weight' is missing from the GGUF file");
        assertRejected(
                variant(
                        "shape",
                        w -> w.removeTensor("blk.1.attn_k.weight")
                                .addTensor("blk.1.attn_k.weight", DType.F32, new long[] {64, 64}, new float[64 * 64])),
                "tensor 'blk.1.attn_k.weight' has shape [64, 64]; expected [32, 64]");
        assertRejected(
                variant("layers", w -> w.putU32("llama.block_count", 1)), "tensors for layer 1", "block_count is 1");
        assertRejected(
                variant("heads", w -> w.putU32("llama.attention.head_count_kv", 3)),
                "invalid hyper-parameters",
                "not a multiple of num_key_value_heads 3");
        assertRejected(
                variant("bos", w -> w.putU32("tokenizer.ggml.bos_token_id", 512)),
                "tokenizer.ggml.bos_token_id = 512 is outside the vocabulary of 512 tokens");
        Path keyLength = variant("keylength", w -> w.putU32("llama.attention.key_length", 32));
        assertRejected(keyLength, "rope.dimension_count 16 differs from the head size 32");
    }

    @Test
    void weightsAreViewsValidUntilClose() throws IOException {
        Path p = TinyGgufModels.write(TinyGgufModels.Spec.LLAMA_SMALL, DType.Q8_0, tmp);
        GgufModel m = GgufModel.open(p);
        var wq = m.weights().layers()[0].wq();
        assertThat(wq.dtype()).isEqualTo(DType.Q8_0);
        assertThat(wq.data().isMapped()).isTrue();
        m.close();
        assertThatThrownBy(() -> wq.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0))
                .isInstanceOf(IllegalStateException.class);
    }
}
