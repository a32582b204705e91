package io.engram.engine.model.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.config.ModelFormatException;
import io.engram.engine.model.Model;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.safetensors.SafetensorsFile;
import io.engram.engine.tensor.DType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad files fail at load with a message naming the file and the problem, never a silent wrong result. */
class SafetensorsCorruptionTest {
    @TempDir
    Path tmp;

    Path model(String name) {
        return TinyModels.write(tmp.resolve(name), TinyModels.Variant.LLAMA, DType.F32, 42);
    }

    @Test
    void truncatedFileNamesTheTensorAndOffsets() throws Exception {
        Path dir = model("trunc");
        Path f = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        Files.write(f, java.util.Arrays.copyOf(all, all.length - 100));
        assertThatThrownBy(() -> Model.openHuggingFace(dir))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("model.safetensors")
                .hasMessageContaining("truncated");
        Files.write(f, java.util.Arrays.copyOf(all, 5));
        assertThatThrownBy(() -> Model.openHuggingFace(dir))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("too short");
    }

    @Test
    void aShapeWhoseSizeOverflowsIsAFormatErrorNamingTheFileAndTensor() throws Exception {
        Path f = Files.createTempDirectory("overflow").resolve("model.safetensors");
        byte[] header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}"
                .getBytes(StandardCharsets.UTF_8);
        java.nio.ByteBuffer b =
                java.nio.ByteBuffer.allocate(8 + header.length + 16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header);
        Files.write(f, b.array());
        assertThatThrownBy(() -> SafetensorsFile.open(f))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("model.safetensors")
                .hasMessageContaining("tensor 'w'")
                .hasMessageContaining("size cannot be stored");
    }

    @Test
    void headerOffsetMismatchAndBadDtypeAreRefused() throws Exception {
        Path dir = model("mismatch");
        Path f = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        String head = new String(all, 8, 200, StandardCharsets.ISO_8859_1);
        // shrink the first tensor's end offset by 4 bytes, keeping the header length: "data_offsets":[0,N]
        int i = head.indexOf("\"data_offsets\":[0,");
        assertThat(i).isPositive();
        int j = head.indexOf(']', i);
        String num = head.substring(i + 18, j);
        String shorter = String.valueOf(Long.parseLong(num) - 4);
        shorter = " ".repeat(num.length() - shorter.length()) + shorter;
        byte[] broken = all.clone();
        System.arraycopy(shorter.getBytes(StandardCharsets.ISO_8859_1), 0, broken, 8 + i + 18, num.length());
        Files.write(f, broken);
        assertThatThrownBy(() -> Model.openHuggingFace(dir))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("mismatch");

        byte[] dtype = all.clone();
        int d = new String(all, 8, 400, StandardCharsets.ISO_8859_1).indexOf("\"F32\"");
        System.arraycopy("\"I64\"".getBytes(StandardCharsets.ISO_8859_1), 0, dtype, 8 + d, 5);
        Files.write(f, dtype);
        assertThatThrownBy(() -> Model.openHuggingFace(dir))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("I64")
                .hasMessageContaining("supported");
    }

    @Test
    void garbageHeaderAndMissingFilesAndUnknownArchitecture() throws Exception {
        Path dir = model("garbage");
        Path f = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(f);
        all[8] = 'x'; // the header no longer starts a JSON value
        Files.write(f, all);
        assertThatThrownBy(() -> Model.openHuggingFace(dir))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("JSON");
        Files.delete(f);
        assertThatThrownBy(() -> Model.openHuggingFace(dir))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("no model.safetensors");

        Path other = model("arch");
        Path cfg = other.resolve("config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("LlamaForCausalLM", "GPTNeoXForCausalLM"));
        assertThatThrownBy(() -> Model.openHuggingFace(other))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("GPTNeoXForCausalLM")
                .hasMessageContaining("supported");
    }

    @Test
    void shardedCheckpointLoadsLikeTheSingleFileAndAMissingShardIsNamed() throws Exception {
        Path one = model("one");
        Path sharded = TinyModels.write(tmp.resolve("sharded"), TinyModels.Variant.LLAMA, DType.F32, 42, 3);
        assertThat(sharded.resolve("model-00002-of-00003.safetensors")).exists();
        try (Model a = Model.openHuggingFace(one);
                Model b = Model.openHuggingFace(sharded)) {
            assertThat(b.weights().layers()[1].wDown().data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
                    .isEqualTo(a.weights().layers()[1].wDown().data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            assertThat(b.config())
                    .usingRecursiveComparison()
                    .ignoringFields("name")
                    .isEqualTo(a.config());
        }
        Files.delete(sharded.resolve("model-00002-of-00003.safetensors"));
        assertThatThrownBy(() -> Model.openHuggingFace(sharded))
                .isInstanceOf(ModelFormatException.class)
                .hasMessageContaining("model-00002-of-00003.safetensors")
                .hasMessageContaining("missing");
    }
}
