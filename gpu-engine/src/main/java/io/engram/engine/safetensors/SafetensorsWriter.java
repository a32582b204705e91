package io.engram.engine.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.Quant;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes a {@code .safetensors} file from float arrays, stored as F32, F16 or BF16 (round to nearest even). Tensors are
 * written in insertion order; the header is padded with spaces to 8 bytes. Used by the synthetic-model generator and
 * by export tools.
 */
public final class SafetensorsWriter {
    private record Entry(DType dtype, long[] shape, float[] data) {}

    private final Map<String, Entry> tensors = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafetensorsWriter add(String name, DType dtype, long[] shape, float[] data) {
        if (dtype.isQuantized()) {
            throw new IllegalArgumentException("safetensors holds F32, F16 or BF16, not " + dtype);
        }
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n != data.length) {
            throw new IllegalArgumentException(
                    "tensor '%s': shape holds %d values, data has %d".formatted(name, n, data.length));
        }
        if (tensors.putIfAbsent(name, new Entry(dtype, shape.clone(), data)) != null) {
            throw new IllegalArgumentException("tensor '%s' added twice".formatted(name));
        }
        return this;
    }

    public void write(Path file) throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode header = om.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (var e : tensors.entrySet()) {
            Entry t = e.getValue();
            long bytes = (long) t.data.length * (t.dtype == DType.F32 ? 4 : 2);
            ObjectNode n = header.putObject(e.getKey());
            n.put("dtype", t.dtype.name());
            var shape = n.putArray("shape");
            for (long d : t.shape) {
                shape.add(d);
            }
            var offs = n.putArray("data_offsets");
            offs.add(offset);
            offs.add(offset + bytes);
            offset += bytes;
        }
        byte[] json = om.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        try (OutputStream out = Files.newOutputStream(file)) {
            ByteBuffer len =
                    ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
            out.write(len.array());
            out.write(json);
            for (int i = json.length; i < padded; i++) {
                out.write(' ');
            }
            for (Entry t : tensors.values()) {
                int width = t.dtype == DType.F32 ? 4 : 2;
                ByteBuffer b = ByteBuffer.allocate(t.data.length * width).order(ByteOrder.LITTLE_ENDIAN);
                for (float f : t.data) {
                    switch (t.dtype) {
                        case F32 -> b.putFloat(f);
                        case F16 -> b.putShort(Float.floatToFloat16(f));
                        case BF16 -> b.putShort(Quant.floatToBf16(f));
                        default -> throw new IllegalStateException(t.dtype.name());
                    }
                }
                out.write(b.array());
            }
        }
    }
}
