package io.engram.engine.model.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.HostWeight;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.safetensors.SafetensorsFile;
import io.engram.engine.tensor.Buf;
import io.engram.engine.tensor.WeightTensor;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A safetensors file larger than 2 GiB (sparse on disk) whose last tensor starts past byte 2^31: it is mapped, not
 * copied, and a matmul reads it correctly through 64-bit offsets.
 */
class LargeFileTest {
    @TempDir
    Path tmp;

    @Test
    void tensorBeyondTwoGibibytesIsMappedAndUsedInPlace() throws Exception {
        long pad = (1L << 31) + 4096; // bytes of a first, all-zero tensor
        int rows = 3, cols = 64;
        String header =
                "{\"pad\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[0,%d]},\"w\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%d,%d]}}"
                        .formatted(pad / 4, pad, rows, cols, pad, pad + rows * cols * 4L);
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        int hl = (h.length + 7) / 8 * 8;
        Path f = tmp.resolve("big.safetensors");
        long dataStart = 8 + hl;
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(dataStart + pad + rows * cols * 4L); // sparse: the pad costs no disk
            raf.write(ByteBuffer.allocate(8)
                    .order(ByteOrder.LITTLE_ENDIAN)
                    .putLong(hl)
                    .array());
            raf.write(h);
            for (int i = h.length; i < hl; i++) {
                raf.write(' ');
            }
            raf.seek(dataStart + pad);
            ByteBuffer w = ByteBuffer.allocate(rows * cols * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < rows * cols; i++) {
                w.putFloat(i % cols == 0 ? i / cols + 1 : 0.5f);
            }
            raf.write(w.array());
        }
        assertThat(f.toFile().length()).isGreaterThan(1L << 31);
        try (SafetensorsFile st = SafetensorsFile.open(f);
                CpuBackend b = new CpuBackend(1, false)) {
            WeightTensor t = st.tensors().get("w");
            assertThat(t.data().address() - st.tensors().get("pad").data().address())
                    .isEqualTo(pad);
            float[] x = new float[cols];
            java.util.Arrays.fill(x, 2f);
            Buf in = b.allocate(cols);
            b.write(in, 0, x, 0, cols);
            Buf out = b.allocate(rows);
            b.matmul(new HostWeight(t), in, 1, out);
            float[] y = new float[rows];
            b.read(out, 0, y, 0, rows);
            // row r: (r+1)*2 + 63 * 0.5 * 2
            assertThat(y).containsExactly(2f + 63f, 4f + 63f, 6f + 63f);
        }
    }
}
