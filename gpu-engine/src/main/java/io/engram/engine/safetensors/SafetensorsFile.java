package io.engram.engine.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.engine.config.ModelFormatException;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.MappedFile;
import io.engram.engine.tensor.WeightTensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One memory-mapped {@code .safetensors} file: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the data. Every range is checked against the file before any tensor is
 * handed out, so a truncated or inconsistent file fails here with the tensor name and offsets, never later with a
 * wrong result. Tensors are views into the mapping and stay valid until {@link #close()}.
 */
public final class SafetensorsFile implements AutoCloseable {
    private static final long MAX_HEADER = 100L << 20;

    private final MappedFile file;
    private final Map<String, WeightTensor> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(MappedFile file, Map<String, WeightTensor> tensors, Map<String, String> metadata) {
        this.file = file;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /** Maps and validates {@code path}. @throws ModelFormatException for a missing, truncated or inconsistent file */
    public static SafetensorsFile open(Path path) {
        MappedFile mf;
        try {
            mf = MappedFile.open(path);
        } catch (IOException e) {
            throw new ModelFormatException(path, "cannot open safetensors file: " + e, e);
        }
        try {
            return parse(path, mf);
        } catch (RuntimeException e) {
            mf.close();
            throw e;
        }
    }

    private static SafetensorsFile parse(Path path, MappedFile mf) {
        MemorySegment seg = mf.segment();
        long size = seg.byteSize();
        if (size < 8) {
            throw new ModelFormatException(
                    path, "file has %d bytes, too short for a safetensors header; truncated?".formatted(size));
        }
        long headerLen = seg.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLen <= 0 || headerLen > MAX_HEADER || 8 + headerLen > size) {
            throw new ModelFormatException(
                    path,
                    "header length %d does not fit the file of %d bytes; not a safetensors file or truncated"
                            .formatted(headerLen, size));
        }
        byte[] hb = seg.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
        JsonNode header;
        try {
            header = new ObjectMapper().readTree(new String(hb, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new ModelFormatException(path, "header is not valid JSON: " + e.getMessage(), e);
        }
        if (header == null || !header.isObject()) {
            throw new ModelFormatException(path, "header is not a JSON object");
        }
        long dataStart = 8 + headerLen;
        long dataSize = size - dataStart;
        Map<String, WeightTensor> out = new LinkedHashMap<>();
        Map<String, String> meta = new LinkedHashMap<>();
        List<long[]> ranges = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode t = e.getValue();
            if (name.equals("__metadata__")) {
                t.fields()
                        .forEachRemaining(m -> meta.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            DType dtype = dtype(path, name, t.path("dtype").asText());
            JsonNode shapeNode = t.path("shape");
            JsonNode offs = t.path("data_offsets");
            if (!shapeNode.isArray() || !offs.isArray() || offs.size() != 2) {
                throw new ModelFormatException(path, "tensor '%s' lacks shape or data_offsets".formatted(name));
            }
            long[] shape = new long[shapeNode.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = shapeNode.get(i).asLong();
                if (shape[i] < 0) {
                    throw new ModelFormatException(path, "tensor '%s' has a negative dimension".formatted(name));
                }
            }
            long begin = offs.get(0).asLong();
            long end = offs.get(1).asLong();
            long need;
            try {
                need = dtype.bytesFor(WeightTensor.elementCount(shape.length == 0 ? new long[] {1} : shape));
            } catch (ArithmeticException | IllegalArgumentException bad) {
                throw new ModelFormatException(
                        path,
                        "tensor '%s' (%s %s) has a shape whose size cannot be stored: %s"
                                .formatted(name, dtype, java.util.Arrays.toString(shape), bad.getMessage()));
            }
            if (begin < 0 || end < begin) {
                throw new ModelFormatException(
                        path, "tensor '%s' has invalid data_offsets [%d, %d]".formatted(name, begin, end));
            }
            if (end - begin != need) {
                throw new ModelFormatException(
                        path,
                        "tensor '%s' (%s %s) spans %d bytes in the header but its shape needs %d; header/offset mismatch"
                                .formatted(name, dtype, java.util.Arrays.toString(shape), end - begin, need));
            }
            if (end > dataSize) {
                throw new ModelFormatException(
                        path,
                        "tensor '%s' ends at byte %d but the file has %d bytes of data; truncated download?"
                                .formatted(name, dataStart + end, size));
            }
            ranges.add(new long[] {begin, end});
            if (shape.length == 0 || shape.length > 2) {
                continue; // scalars and >2-D tensors are never weights of the families we run; skip, don't misread
            }
            out.put(name, new WeightTensor(name, dtype, shape, seg.asSlice(dataStart + begin, end - begin)));
        }
        ranges.sort((a, b) -> Long.compare(a[0], b[0]));
        for (int i = 1; i < ranges.size(); i++) {
            if (ranges.get(i)[0] < ranges.get(i - 1)[1]) {
                throw new ModelFormatException(
                        path, "tensor byte ranges overlap at offset %d; corrupt header".formatted(ranges.get(i)[0]));
            }
        }
        return new SafetensorsFile(mf, Collections.unmodifiableMap(out), Collections.unmodifiableMap(meta));
    }

    private static DType dtype(Path path, String name, String s) {
        return switch (s) {
            case "F32" -> DType.F32;
            case "F16" -> DType.F16;
            case "BF16" -> DType.BF16;
            default ->
                throw new ModelFormatException(
                        path,
                        "tensor '%s' has dtype %s; supported: F32, F16, BF16"
                                .formatted(name, s.isEmpty() ? "(none)" : s));
        };
    }

    public Path path() {
        return file.path();
    }

    /** Tensors by name, in header order. */
    public Map<String, WeightTensor> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    @Override
    public void close() {
        file.close();
    }
}
