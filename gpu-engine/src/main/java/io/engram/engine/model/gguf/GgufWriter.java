package io.engram.engine.model.gguf;

import io.engram.engine.tensor.DType;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes GGUF files (v3 by default), for the synthetic models of {@code bench engine} and for tests: metadata of every type, tensors encoded from floats by
 * {@link GgufQuantizers}, or raw bytes with any ggml type id (to build unsupported or corrupt files). Written from the
 * ggml {@code docs/gguf.md} specification. After {@link #toBytes()} the byte position of each tensor's offset field is
 * available from {@link #offsetFieldPosition(String)}, so tests can corrupt it.
 */
public final class GgufWriter {
    private record Tensor(String name, int typeId, long[] ne, byte[] data) {}

    private final Map<String, GgufMetadata.Value> kv = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();
    private final Map<String, Long> offsetFields = new LinkedHashMap<>();
    private int version = 3;
    private int alignment = GgufFile.DEFAULT_ALIGNMENT;

    /** Sets the version field (2 or 3 are valid; anything else makes an invalid file). */
    public GgufWriter version(int v) {
        this.version = v;
        return this;
    }

    /** Sets the data alignment and writes it as {@code general.alignment} (u32). */
    public GgufWriter alignment(int a) {
        this.alignment = a;
        return put(GgufFile.ALIGNMENT_KEY, GgufValueType.UINT32, (long) a);
    }

    /** Adds (or replaces) a scalar: {@code value} is a Long for integer types, Float, Double, Boolean or String. */
    public GgufWriter put(String key, GgufValueType type, Object value) {
        kv.put(key, new GgufMetadata.Value(type, null, value));
        return this;
    }

    /** Adds an array in the representation {@link GgufMetadata.Value} documents. */
    public GgufWriter putArray(String key, GgufValueType elementType, Object values) {
        kv.put(key, new GgufMetadata.Value(GgufValueType.ARRAY, elementType, values));
        return this;
    }

    public GgufWriter putString(String key, String v) {
        return put(key, GgufValueType.STRING, v);
    }

    public GgufWriter putU32(String key, long v) {
        return put(key, GgufValueType.UINT32, v);
    }

    public GgufWriter putI32(String key, long v) {
        return put(key, GgufValueType.INT32, v);
    }

    public GgufWriter putF32(String key, float v) {
        return put(key, GgufValueType.FLOAT32, v);
    }

    public GgufWriter putBool(String key, boolean v) {
        return put(key, GgufValueType.BOOL, v);
    }

    public GgufWriter putStrings(String key, List<String> v) {
        return putArray(key, GgufValueType.STRING, List.copyOf(v));
    }

    public GgufWriter putFloats(String key, float[] v) {
        return putArray(key, GgufValueType.FLOAT32, v.clone());
    }

    /** An ARRAY of INT32. */
    public GgufWriter putInts(String key, int[] v) {
        long[] l = new long[v.length];
        for (int i = 0; i < v.length; i++) {
            l[i] = v[i];
        }
        return putArray(key, GgufValueType.INT32, l);
    }

    public GgufWriter remove(String key) {
        kv.remove(key);
        return this;
    }

    /**
     * Adds a tensor encoded in {@code type}.
     *
     * @param shape PyTorch order, outermost first ({@code [out, in]} for a matrix); written as ggml ne reversed
     * @param values row-major, {@code product(shape)} values
     */
    public GgufWriter addTensor(String name, DType type, long[] shape, float[] values) {
        long[] ne = new long[shape.length];
        for (int i = 0; i < shape.length; i++) {
            ne[i] = shape[shape.length - 1 - i];
        }
        if (ne[0] % type.blockSize() != 0) {
            throw new IllegalArgumentException("tensor %s: rows of %d values cannot be stored as %s (block %d)"
                    .formatted(name, ne[0], type, type.blockSize()));
        }
        return addRawTensor(name, GgmlType.of(type).id(), ne, GgufQuantizers.encode(type, values));
    }

    /** Adds a tensor with exactly these bytes, ggml type id and {@code ne} (innermost first). */
    public GgufWriter addRawTensor(String name, int ggmlTypeId, long[] ne, byte[] data) {
        tensors.add(new Tensor(name, ggmlTypeId, ne.clone(), data.clone()));
        return this;
    }

    /** The metadata as it will be written, in order. */
    public Map<String, GgufMetadata.Value> metadata() {
        return new LinkedHashMap<>(kv);
    }

    public GgufWriter removeTensor(String name) {
        if (!tensors.removeIf(t -> t.name().equals(name))) {
            throw new IllegalArgumentException("no tensor " + name);
        }
        return this;
    }

    /** Byte position, in the last {@link #toBytes()} output, of the u64 data-offset field of tensor {@code name}. */
    public long offsetFieldPosition(String name) {
        Long p = offsetFields.get(name);
        if (p == null) {
            throw new IllegalArgumentException("no tensor " + name + " in the last output");
        }
        return p;
    }

    public byte[] toBytes() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            writeTo(out);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e); // a byte array stream does not fail
        }
        return out.toByteArray();
    }

    /**
     * Writes the file, streaming the tensors' data after the header (a model of more than 2 GiB, e.g. a ~1B Llama in
     * F32, does not fit one byte array).
     */
    public Path write(Path path) throws IOException {
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(path), 1 << 20)) {
            writeTo(out);
        }
        return path;
    }

    private void writeTo(OutputStream out) throws IOException {
        header().writeTo(out);
        byte[] zeros = new byte[alignment];
        for (Tensor t : tensors) {
            out.write(t.data());
            out.write(zeros, 0, (int) (align(t.data().length) - t.data().length));
        }
    }

    /** Magic, version, metadata and tensor infos, padded to the alignment where the tensors' data starts. */
    private Out header() {
        Out o = new Out();
        o.u32(GgufFile.MAGIC);
        o.u32(version);
        o.u64(tensors.size());
        o.u64(kv.size());
        for (var e : kv.entrySet()) {
            o.string(e.getKey());
            o.u32(e.getValue().type().id());
            o.value(e.getValue());
        }
        long offset = 0;
        offsetFields.clear();
        for (Tensor t : tensors) {
            o.string(t.name());
            o.u32(t.ne().length);
            for (long n : t.ne()) {
                o.u64(n);
            }
            o.u32(t.typeId());
            offsetFields.put(t.name(), (long) o.size());
            o.u64(offset);
            offset = align(offset + t.data().length);
        }
        o.pad(align(o.size()) - o.size());
        return o;
    }

    private long align(long n) {
        return (n + alignment - 1) / alignment * alignment;
    }

    /** Little-endian output. */
    private static final class Out extends ByteArrayOutputStream {
        private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        void u32(long v) {
            scratch.clear();
            scratch.putInt((int) v);
            write(scratch.array(), 0, 4);
        }

        void u64(long v) {
            scratch.clear();
            scratch.putLong(v);
            write(scratch.array(), 0, 8);
        }

        void bytes(byte[] b) {
            write(b, 0, b.length);
        }

        void pad(long n) {
            for (long i = 0; i < n; i++) {
                write(0);
            }
        }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            bytes(b);
        }

        void value(GgufMetadata.Value v) {
            if (v.type() != GgufValueType.ARRAY) {
                scalar(v.type(), v.value());
                return;
            }
            GgufValueType et = v.elementType();
            u32(et.id());
            switch (v.value()) {
                case long[] a -> {
                    u64(a.length);
                    for (long x : a) {
                        scalar(et, x);
                    }
                }
                case float[] a -> {
                    u64(a.length);
                    for (float x : a) {
                        scalar(et, x);
                    }
                }
                case double[] a -> {
                    u64(a.length);
                    for (double x : a) {
                        scalar(et, x);
                    }
                }
                case boolean[] a -> {
                    u64(a.length);
                    for (boolean x : a) {
                        scalar(et, x);
                    }
                }
                case List<?> a -> {
                    u64(a.size());
                    for (Object x : a) {
                        scalar(et, x);
                    }
                }
                default ->
                    throw new IllegalArgumentException(
                            "unsupported array value " + v.value().getClass());
            }
        }

        void scalar(GgufValueType t, Object x) {
            switch (t) {
                case UINT8, INT8 -> write((int) (long) (Long) x);
                case UINT16, INT16 -> {
                    long v = (Long) x;
                    write((int) (v & 0xFF));
                    write((int) ((v >> 8) & 0xFF));
                }
                case UINT32, INT32 -> u32((Long) x);
                case UINT64, INT64 -> u64((Long) x);
                case FLOAT32 -> u32(Float.floatToRawIntBits((Float) x));
                case FLOAT64 -> u64(Double.doubleToRawLongBits((Double) x));
                case BOOL -> write((Boolean) x ? 1 : 0);
                case STRING -> string((String) x);
                case ARRAY -> throw new IllegalArgumentException("arrays of arrays are not written");
            }
        }
    }
}
