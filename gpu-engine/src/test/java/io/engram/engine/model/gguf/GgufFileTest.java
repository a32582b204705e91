package io.engram.engine.model.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.config.ModelFormatException;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import io.engram.engine.tensor.WeightTensor;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The container: the real stories260K files, a writer round trip, and corrupt files. */
class GgufFileTest {
    @TempDir
    Path tmp;

    static Path stories(String variant) {
        Path p = TinyGgufModels.storiesGguf(variant);
        Assumptions.assumeTrue(Files.isRegularFile(p), "no model at " + p + "; skipping");
        return p;
    }

    @Test
    void readsStoriesF32AsDocumented() {
        try (GgufFile f = GgufFile.open(stories("f32"))) {
            assertThat(f.version()).isEqualTo(3);
            assertThat(f.alignment()).isEqualTo(32);
            assertThat(f.dataStart()).isEqualTo(14_432);
            assertThat(f.metadata().keys()).hasSize(26);
            assertThat(f.tensorInfos()).hasSize(47).allMatch(t -> t.type() == GgmlType.F32);
            assertThat(f.tensors()).hasSize(47);
            assertThat(f.tensor("token_embd.weight").shape()).containsExactly(512, 64);
            assertThat(f.tensor("blk.0.attn_q.weight").shape()).containsExactly(64, 64);
            assertThat(f.tensor("blk.4.attn_k.weight").shape()).containsExactly(32, 64);
            assertThat(f.tensor("blk.2.ffn_gate.weight").shape()).containsExactly(172, 64);
            assertThat(f.tensor("blk.2.ffn_down.weight").shape()).containsExactly(64, 172);
            assertThat(f.tensor("output_norm.weight").shape()).containsExactly(64);
            assertThat(f.tensorInfos().get(0).ne()).containsExactly(64, 512);
            assertThat(f.tensor("token_embd.weight").data().isMapped())
                    .as("a view into the mapping, not a heap copy")
                    .isTrue();
            GgufMetadata m = f.metadata();
            assertThat(m.type("llama.vocab_size")).isEqualTo(GgufValueType.UINT32);
            assertThat(m.getInt("llama.block_count")).isEqualTo(5);
            assertThat(m.getFloat("llama.attention.layer_norm_rms_epsilon")).isEqualTo(1e-5f);
            assertThat(m.getString("general.name")).isEqualTo("stories260K");
            assertThat(m.getStringList("tokenizer.ggml.tokens"))
                    .hasSize(512)
                    .startsWith("<unk>", "<s>", "</s>", "<0x00>");
            assertThat(m.getIntArray("tokenizer.ggml.token_type")).startsWith(2, 3, 3, 6);
            assertThat(m.getBoolean("tokenizer.ggml.add_bos_token")).isTrue();
            assertThatThrownBy(() -> m.getInt("general.name"))
                    .isInstanceOf(ModelFormatException.class)
                    .hasMessageContaining("stories260K-f32.gguf")
                    .hasMessageContaining("'general.name' has type STRING; expected an integer");
            assertThatThrownBy(() -> m.getFloatArray("tokenizer.ggml.tokens"))
                    .hasMessageContaining(
                            "'tokenizer.ggml.tokens' has type ARRAY of STRING; expected ARRAY of FLOAT32");
            assertThatThrownBy(() -> m.getString("llama.nope"))
                    .hasMessageContaining("missing metadata key 'llama.nope'");
            assertThatThrownBy(() -> f.tensor("output.weight"))
                    .hasMessageContaining("tensor 'output.weight' is missing");
        }
    }

    @Test
    void storiesQ8WeightsAreWithinHalfAStepOfTheF32Weights() {
        try (GgufFile q8 = GgufFile.open(stories("q8_0"));
                GgufFile f32 = GgufFile.open(stories("f32"))) {
            assertThat(q8.dataStart()).isEqualTo(14_464);
            assertThat(q8.metadata().getInt("general.file_type")).isEqualTo(7);
            List<GgufFile.TensorInfo> quantized = q8.tensorInfos().stream()
                    .filter(t -> t.type() == GgmlType.Q8_0)
                    .toList();
            assertThat(quantized).hasSize(31);
            assertThat(quantized)
                    .noneMatch(t -> t.name().contains("ffn_down") || t.name().contains("norm"));
            assertThat(q8.tensorInfos()).hasSize(47);
            double worstFraction = 0;
            for (GgufFile.TensorInfo info : q8.tensorInfos()) {
                WeightTensor a = q8.tensor(info.name());
                WeightTensor b = f32.tensor(info.name());
                assertThat(a.shape()).as(info.name()).containsExactly(b.shape());
                float[] x = decodeAll(b);
                float[] y = decodeAll(a);
                if (a.dtype() == DType.F32) {
                    assertThat(y).as("%s is stored losslessly", info.name()).containsExactly(x);
                    continue;
                }
                for (int i = 0; i < x.length; i++) {
                    float d = Quant.halfAt(a.data(), (long) (i / 32) * 34);
                    // half a step, plus what rounding d to fp16 (relative 2^-11) can add over |q| <= 127
                    double bound = d / 2 + 127 * Math.abs(d) * 0x1p-11 + 1e-9;
                    double err = Math.abs(x[i] - y[i]);
                    assertThat(err)
                            .as("%s[%d] = %s decoded as %s (d = %s)", info.name(), i, x[i], y[i], d)
                            .isLessThanOrEqualTo(bound);
                    worstFraction = Math.max(worstFraction, err / (d / 2 + 1e-12));
                }
            }
            System.out.printf("stories Q8_0 vs F32: worst error %.3f of half a step%n", worstFraction);
        }
    }

    static float[] decodeAll(WeightTensor t) {
        float[] out = new float[Math.toIntExact(t.elementCount())];
        Quant.decode(t.dtype(), t.data(), 0, out, 0, out.length);
        return out;
    }

    // ---- writer round trip ----

    private static GgufWriter everyMetadataType(GgufWriter w) {
        return w.put("t.u8", GgufValueType.UINT8, 255L)
                .put("t.i8", GgufValueType.INT8, -128L)
                .put("t.u16", GgufValueType.UINT16, 65535L)
                .put("t.i16", GgufValueType.INT16, -32768L)
                .put("t.u32", GgufValueType.UINT32, 4_000_000_000L)
                .put("t.i32", GgufValueType.INT32, -2_000_000_000L)
                .put("t.f32", GgufValueType.FLOAT32, 1.5e-5f)
                .put("t.bool", GgufValueType.BOOL, true)
                .put("t.string", GgufValueType.STRING, "héllo ▁wörld \u2603 <0x0A>")
                .put("t.empty", GgufValueType.STRING, "")
                .put("t.u64", GgufValueType.UINT64, 1L << 40)
                .put("t.i64", GgufValueType.INT64, -(1L << 50))
                .put("t.f64", GgufValueType.FLOAT64, Math.PI)
                .putArray("a.u8", GgufValueType.UINT8, new long[] {0, 7, 255})
                .putArray("a.i8", GgufValueType.INT8, new long[] {-128, 0, 127})
                .putArray("a.u16", GgufValueType.UINT16, new long[] {1, 65535})
                .putArray("a.i16", GgufValueType.INT16, new long[] {-32768, 32767})
                .putArray("a.u32", GgufValueType.UINT32, new long[] {0, 4_294_967_295L})
                .putArray("a.i32", GgufValueType.INT32, new long[] {-1, Integer.MAX_VALUE})
                .putArray("a.f32", GgufValueType.FLOAT32, new float[] {-0f, 1f, Float.MIN_VALUE, Float.NaN})
                .putArray("a.bool", GgufValueType.BOOL, new boolean[] {true, false, true})
                .putArray("a.string", GgufValueType.STRING, List.of("a", "", "▁the", "<s>"))
                .putArray("a.u64", GgufValueType.UINT64, new long[] {0, Long.MAX_VALUE})
                .putArray("a.i64", GgufValueType.INT64, new long[] {Long.MIN_VALUE, 3})
                .putArray("a.f64", GgufValueType.FLOAT64, new double[] {1e300, -2.5})
                .putArray("a.empty", GgufValueType.INT32, new long[0]);
    }

    private static float[] randomValues(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextGaussian() * (i % 97 == 0 ? 4 : 1));
        }
        return v;
    }

    @Test
    void roundTripsEveryMetadataTypeAndEveryTensorType() throws IOException {
        for (int[] versionAndAlignment : new int[][] {{3, 32}, {2, 64}, {3, 1}}) {
            Random rnd = new Random(7);
            GgufWriter w = everyMetadataType(
                    new GgufWriter().version(versionAndAlignment[0]).alignment(versionAndAlignment[1]));
            Map<String, long[]> shapes = new java.util.LinkedHashMap<>();
            List<DType> types = new ArrayList<>();
            List<byte[]> encoded = new ArrayList<>();
            for (DType t : DType.values()) {
                long cols = t.blockSize() == 256 ? 512 : 96;
                for (long[] shape : new long[][] {{3, cols}, {cols}}) {
                    String name = t.name().toLowerCase() + "." + shape.length + "d";
                    float[] values = randomValues(rnd, Math.toIntExact(WeightTensor.elementCount(shape)));
                    w.addTensor(name, t, shape, values);
                    shapes.put(name, shape);
                    types.add(t);
                    encoded.add(GgufQuantizers.encode(t, values));
                }
            }
            Path p = w.write(
                    tmp.resolve("roundtrip-v" + versionAndAlignment[0] + "-a" + versionAndAlignment[1] + ".gguf"));
            assertThat(java.nio.file.Files.readAllBytes(p))
                    .as("the streamed file is the in-memory form")
                    .isEqualTo(w.toBytes());
            try (GgufFile f = GgufFile.open(p)) {
                String at = "v%d alignment %d".formatted(versionAndAlignment[0], versionAndAlignment[1]);
                assertThat(f.version()).as(at).isEqualTo(versionAndAlignment[0]);
                assertThat(f.alignment()).as(at).isEqualTo(versionAndAlignment[1]);
                Map<String, GgufMetadata.Value> expected = everyMetadataType(
                                new GgufWriter().alignment(versionAndAlignment[1]))
                        .metadata();
                assertThat(f.metadata().keys()).as(at).containsExactlyElementsOf(expected.keySet());
                for (var e : expected.entrySet()) {
                    GgufMetadata.Value got = f.metadata().entries().get(e.getKey());
                    assertThat(got.type()).as(e.getKey()).isEqualTo(e.getValue().type());
                    assertThat(got.elementType())
                            .as(e.getKey())
                            .isEqualTo(e.getValue().elementType());
                    assertThat(Objects.deepEquals(got.value(), e.getValue().value()))
                            .as(
                                    "%s: %s vs %s",
                                    e.getKey(), got.value(), e.getValue().value())
                            .isTrue();
                }
                assertThat(f.tensors().keySet()).as(at).containsExactlyElementsOf(shapes.keySet());
                int i = 0;
                for (var e : shapes.entrySet()) {
                    WeightTensor t = f.tensor(e.getKey());
                    assertThat(t.dtype()).as(e.getKey()).isEqualTo(types.get(i));
                    assertThat(t.shape()).as(e.getKey()).containsExactly(e.getValue());
                    assertThat(t.data().toArray(ValueLayout.JAVA_BYTE))
                            .as(e.getKey())
                            .containsExactly(encoded.get(i));
                    assertThat((f.dataStart() + f.tensorInfos().get(i).offset()) % versionAndAlignment[1])
                            .isZero();
                    i++;
                }
                GgufMetadata m = f.metadata();
                assertThat(m.getInt("t.u16")).isEqualTo(65535);
                assertThat(m.getLong("t.u32")).isEqualTo(4_000_000_000L);
                assertThatThrownBy(() -> m.getInt("t.u32"))
                        .hasMessageContaining("'t.u32' = 4000000000 does not fit a 32-bit int");
                assertThat(m.getFloat("t.f64")).isEqualTo((float) Math.PI);
                assertThat(m.getIntArray("a.u8")).containsExactly(0, 7, 255);
                assertThat(m.getFloatArray("a.f64")).containsExactly((float) 1e300, -2.5f);
                assertThat(m.getStringList("a.string")).containsExactly("a", "", "▁the", "<s>");
                assertThat(m.getString("t.string")).isEqualTo("héllo ▁wörld \u2603 <0x0A>");
            }
        }
    }

    @Test
    void higherDimensionalTensorsAreListedButNotMapped() throws IOException {
        Path p = new GgufWriter()
                .addRawTensor("conv", GgmlType.F32.id(), new long[] {4, 3, 2}, new byte[4 * 24])
                .addRawTensor("flat", GgmlType.F32.id(), new long[] {8, 2, 1, 1}, new byte[4 * 16])
                .write(tmp.resolve("dims.gguf"));
        try (GgufFile f = GgufFile.open(p)) {
            assertThat(f.tensorInfos()).hasSize(2);
            assertThat(f.tensor("flat").shape())
                    .as("outer size-1 dimensions dropped")
                    .containsExactly(2, 8);
            assertThatThrownBy(() -> f.tensor("conv")).hasMessageContaining("'conv' has more than two dimensions");
        }
    }

    // ---- corrupt files ----

    private Path tinyModel() throws IOException {
        return TinyGgufModels.write(TinyGgufModels.Spec.LLAMA_SMALL, DType.F32, tmp);
    }

    private static void assertRejected(Path p, String... messageParts) {
        assertThatThrownBy(() -> GgufFile.open(p).close())
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining(p.toString())
                .hasMessageContainingAll(messageParts);
    }

    private Path patched(Path source, String name, long position, long value, int bytes) throws IOException {
        byte[] b = Files.readAllBytes(source);
        ByteBuffer bb = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes == 8) {
            bb.putLong((int) position, value);
        } else {
            bb.putInt((int) position, (int) value);
        }
        return Files.write(tmp.resolve(name), b);
    }

    @Test
    void truncatedFilesAreRejectedWithTheirOffsets() throws IOException {
        List<Path> sources = new ArrayList<>(List.of(tinyModel()));
        Path stories = TinyGgufModels.storiesGguf("f32");
        if (Files.isRegularFile(stories)) {
            sources.add(stories);
        }
        for (Path source : sources) {
            byte[] all = Files.readAllBytes(source);
            long dataStart;
            try (GgufFile f = GgufFile.open(source)) {
                dataStart = f.dataStart();
            }
            long[] cuts = {
                0, 3, 10, 20, 30, 100, 1000, 5000, dataStart - 60, dataStart - 1, dataStart + 100, all.length - 1
            };
            for (long cut : cuts) {
                Path p = Files.write(
                        tmp.resolve("cut-" + cut + "-" + source.getFileName()),
                        java.util.Arrays.copyOf(all, (int) cut));
                assertThatThrownBy(() -> GgufFile.open(p).close())
                        .as("%s cut at %d", source.getFileName(), cut)
                        .isInstanceOf(ModelFormatException.class)
                        .hasMessageContaining(p.toString())
                        .hasMessageContaining("truncated");
            }
        }
        Path p = Files.write(
                tmp.resolve("cut-data.gguf"),
                java.util.Arrays.copyOf(
                        Files.readAllBytes(sources.getLast()), Files.readAllBytes(sources.getLast()).length - 1));
        assertRejected(p, "tensor '", "spans bytes [", "truncated download?");
    }

    @Test
    void badMagicAndVersionsAreRejected() throws IOException {
        Path model = tinyModel();
        assertRejected(patched(model, "magic.gguf", 0, 0x46554748, 4), "not a GGUF file", "expected 47475546");
        assertRejected(patched(model, "bigendian.gguf", 0, Integer.reverseBytes(GgufFile.MAGIC), 4), "big-endian");
        assertRejected(patched(model, "v1.gguf", 4, 1, 4), "GGUF version 1 is not supported", "re-convert");
        assertRejected(patched(model, "v4.gguf", 4, 4, 4), "GGUF version 4 is not supported");
        assertRejected(
                patched(model, "tensors.gguf", 8, 1L << 40, 8), "claims 1099511627776 tensors", "corrupt header");
        assertRejected(patched(model, "kvs.gguf", 16, -1L, 8), "claims 18446744073709551615 metadata entries");
        assertRejected(
                patched(model, "keylen.gguf", 24, 1L << 33, 8), "key of metadata entry #0", "claims 8589934592 bytes");
    }

    @Test
    void badTensorOffsetsAreRejected() throws IOException {
        GgufWriter w = TinyGgufModels.writer(
                TinyGgufModels.Spec.LLAMA_SMALL,
                TinyGgufModels.randomWeights(TinyGgufModels.Spec.LLAMA_SMALL),
                DType.F32);
        Path model = w.write(tmp.resolve("model.gguf"));
        long field = w.offsetFieldPosition("blk.0.attn_q.weight");
        long firstField = w.offsetFieldPosition("token_embd.weight");
        long size = Files.size(model);
        assertRejected(
                patched(model, "beyond.gguf", field, 1L << 42, 8),
                "'blk.0.attn_q.weight'",
                "beyond the end of the " + size + "-byte file");
        assertRejected(
                patched(model, "past.gguf", field, size - 4096, 8),
                "'blk.0.attn_q.weight'",
                "spans bytes",
                "truncated");
        assertRejected(
                patched(model, "misaligned.gguf", field, readLong(model, field) + 4, 8),
                "'blk.0.attn_q.weight' has data offset",
                "not a multiple of the alignment 32");
        assertRejected(
                patched(model, "overlap.gguf", field, readLong(model, firstField) + 32, 8),
                "overlap",
                "'token_embd.weight'",
                "'blk.0.attn_q.weight'");
    }

    private static long readLong(Path p, long pos) throws IOException {
        return ByteBuffer.wrap(Files.readAllBytes(p))
                .order(ByteOrder.LITTLE_ENDIAN)
                .getLong((int) pos);
    }

    @Test
    void unsupportedAndUnknownTypesAreNamed() throws IOException {
        Path q5k = new GgufWriter()
                .addRawTensor("blk.0.ffn_down.weight", 13, new long[] {256, 2}, new byte[2 * 176])
                .write(tmp.resolve("q5k.gguf"));
        assertRejected(q5k, "tensor 'blk.0.ffn_down.weight' has type Q5_K (ggml type 13)", "not support", "Q4_K");
        Path unknown = new GgufWriter()
                .addRawTensor("w", 99, new long[] {32}, new byte[32])
                .write(tmp.resolve("t99.gguf"));
        assertRejected(unknown, "tensor 'w' has unknown ggml type id 99");
        Path rows = new GgufWriter()
                .addRawTensor("w", GgmlType.Q8_0.id(), new long[] {48, 2}, new byte[3 * 34])
                .write(tmp.resolve("rows.gguf"));
        assertRejected(rows, "tensor 'w' is Q8_0 with rows of 48 values, not a multiple of its block size 32");
        Path dims = new GgufWriter()
                .addRawTensor("w", 0, new long[] {1, 1, 1, 1, 1}, new byte[4])
                .write(tmp.resolve("dims5.gguf"));
        assertRejected(dims, "tensor 'w'", "n_dims 5");
    }

    @Test
    void inconsistentHeadersAreRejected() throws IOException {
        byte[] twoKeys = new GgufWriter().putU32("a", 1).putU32("b", 2).toBytes();
        String text = new String(twoKeys, java.nio.charset.StandardCharsets.ISO_8859_1);
        twoKeys[text.indexOf('b', 24)] = 'a';
        assertRejected(Files.write(tmp.resolve("dupkey.gguf"), twoKeys), "metadata key 'a' appears twice");
        assertRejected(
                new GgufWriter()
                        .addRawTensor("w", 0, new long[] {8}, new byte[32])
                        .addRawTensor("w", 0, new long[] {8}, new byte[32])
                        .write(tmp.resolve("duptensor.gguf")),
                "tensor 'w' is listed twice");
        assertRejected(
                new GgufWriter().putU32(GgufFile.ALIGNMENT_KEY, 48).write(tmp.resolve("align.gguf")),
                "general.alignment = 48 is not a power of two");
        assertRejected(
                new GgufWriter()
                        .putArray("nested", GgufValueType.ARRAY, new long[0])
                        .write(tmp.resolve("nested.gguf")),
                "array of arrays");
        byte[] badType = new GgufWriter().putU32("k", 1).toBytes();
        ByteBuffer.wrap(badType).order(ByteOrder.LITTLE_ENDIAN).putInt(24 + 8 + 1, 77);
        assertRejected(Files.write(tmp.resolve("valuetype.gguf"), badType), "metadata 'k'", "unknown value type 77");
    }
}
