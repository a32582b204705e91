package io.engram.engine.model.gguf;

import io.engram.engine.config.ModelFormatException;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.MappedFile;
import io.engram.engine.tensor.WeightTensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One memory-mapped GGUF file (version 2 or 3, little-endian): header, metadata and tensor infos, then the
 * {@code general.alignment}-aligned tensor data. Layout (ggml {@code docs/gguf.md}): magic "GGUF", u32 version, u64
 * tensor count, u64 metadata count, the metadata key-value pairs, one info per tensor (name, u32 n_dims, u64 ne[n_dims]
 * innermost first, u32 ggml type, u64 offset relative to the data start), padding to the alignment, the data.
 *
 * <p>Everything is checked against the file before a tensor is handed out: counts, string and array lengths, tensor
 * types, alignment, bounds and overlaps. A bad file fails in {@link #open} with a {@link ModelFormatException} naming
 * the file, the tensor or key, and byte offsets. Tensors are {@link WeightTensor} views into the mapping, shaped in
 * PyTorch order (ggml's {@code ne} reversed, so a matrix is {@code [ne1, ne0]} = {@code [out, in]}); they are valid
 * until {@link #close()}. Thread-safe for reads.
 */
public final class GgufFile implements AutoCloseable {
    /** "GGUF" read as a little-endian u32. */
    public static final int MAGIC = 0x46554747;

    public static final int DEFAULT_ALIGNMENT = 32;
    public static final String ALIGNMENT_KEY = "general.alignment";
    private static final int MAX_DIMS = 4;

    /**
     * A tensor as its info describes it.
     *
     * @param ne dimensions innermost first, as ggml stores them
     * @param offset byte offset of the data relative to {@link GgufFile#dataStart()}
     * @param byteSize bytes of data
     */
    public record TensorInfo(String name, GgmlType type, long[] ne, long offset, long byteSize) {
        /** The PyTorch-order shape: {@code ne} reversed. */
        public long[] shape() {
            long[] s = new long[ne.length];
            for (int i = 0; i < ne.length; i++) {
                s[i] = ne[ne.length - 1 - i];
            }
            return s;
        }

        @Override
        public String toString() {
            return name + " " + type + " ne=" + Arrays.toString(ne) + " @" + offset;
        }
    }

    private final MappedFile file;
    private final int version;
    private final GgufMetadata metadata;
    private final int alignment;
    private final long dataStart;
    private final List<TensorInfo> infos;
    private final Map<String, WeightTensor> tensors;

    private GgufFile(
            MappedFile file,
            int version,
            GgufMetadata metadata,
            int alignment,
            long dataStart,
            List<TensorInfo> infos,
            Map<String, WeightTensor> tensors) {
        this.file = file;
        this.version = version;
        this.metadata = metadata;
        this.alignment = alignment;
        this.dataStart = dataStart;
        this.infos = infos;
        this.tensors = tensors;
    }

    /**
     * Maps and validates {@code path}. The caller owns the result and must close it.
     *
     * @throws ModelFormatException when the file is missing, unreadable, truncated, inconsistent or uses a tensor type
     *     the engine does not support
     */
    public static GgufFile open(Path path) {
        MappedFile mf;
        try {
            mf = MappedFile.open(path);
        } catch (IOException e) {
            throw new ModelFormatException(path, "cannot open GGUF file: " + e, e);
        }
        try {
            return parse(path, mf);
        } catch (RuntimeException e) {
            mf.close();
            throw e;
        }
    }

    private static GgufFile parse(Path path, MappedFile mf) {
        GgufReader r = new GgufReader(path, mf.segment());
        long size = r.size();
        if (size < 4) {
            throw new ModelFormatException(
                    path, "file has %d bytes, too short for a GGUF header; truncated?".formatted(size));
        }
        int magic = r.u32("magic");
        if (magic != MAGIC) {
            String hint =
                    Integer.reverseBytes(magic) == MAGIC ? " (byte-swapped: big-endian GGUF is not supported)" : "";
            throw new ModelFormatException(
                    path,
                    "not a GGUF file: magic is %08x, expected 47475546 (\"GGUF\")%s"
                            .formatted(Integer.reverseBytes(magic), hint));
        }
        int version = r.u32("version");
        if (version != 2 && version != 3) {
            String hint = version == 1
                    ? "; GGUF v1 (32-bit counts) is obsolete, re-convert the model"
                    : Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3
                            ? "; big-endian GGUF is not supported"
                            : "";
            throw new ModelFormatException(
                    path, "GGUF version %d is not supported (only 2 and 3)%s".formatted(version & 0xFFFFFFFFL, hint));
        }
        long tensorCount = r.u64("tensor count");
        long kvCount = r.u64("metadata count");
        // the smallest key-value pair is 13 bytes and the smallest tensor info 32; anything more is a corrupt header
        if (kvCount < 0 || kvCount > r.remaining() / 13) {
            throw new ModelFormatException(
                    path,
                    "header claims %s metadata entries but only %d bytes follow; corrupt header or truncated file"
                            .formatted(Long.toUnsignedString(kvCount), r.remaining()));
        }
        Map<String, GgufMetadata.Value> kv = new LinkedHashMap<>();
        for (long i = 0; i < kvCount; i++) {
            long at = r.position();
            String key = r.string("key of metadata entry #" + i);
            GgufMetadata.Value v = r.value(key);
            if (kv.put(key, v) != null) {
                throw new ModelFormatException(
                        path, "metadata key '%s' appears twice (second at byte %d)".formatted(key, at));
            }
        }
        GgufMetadata metadata = new GgufMetadata(path, kv);
        int alignment = alignment(path, metadata);
        if (tensorCount < 0 || tensorCount > r.remaining() / 32) {
            throw new ModelFormatException(
                    path,
                    "header claims %s tensors but only %d bytes follow the metadata; corrupt header or truncated file"
                            .formatted(Long.toUnsignedString(tensorCount), r.remaining()));
        }
        List<TensorInfo> infos = new ArrayList<>((int) tensorCount);
        for (long i = 0; i < tensorCount; i++) {
            infos.add(tensorInfo(r, i));
        }
        long dataStart = (r.position() + alignment - 1) / alignment * alignment;
        Map<String, WeightTensor> tensors = new LinkedHashMap<>();
        Set<String> names = new HashSet<>();
        for (TensorInfo t : infos) {
            if (!names.add(t.name())) {
                throw new ModelFormatException(path, "tensor '%s' is listed twice".formatted(t.name()));
            }
            checkBounds(path, t, dataStart, alignment, size);
            long[] shape = weightShape(t.ne());
            // tensors of more than two real dimensions are never weights of the families we run: listed, not mapped
            if (shape != null) {
                MemorySegment data = mf.segment().asSlice(dataStart + t.offset(), t.byteSize());
                tensors.put(t.name(), new WeightTensor(t.name(), t.type().dtype(), shape, data));
            }
        }
        checkOverlaps(path, infos, dataStart);
        return new GgufFile(
                mf,
                version,
                metadata,
                alignment,
                dataStart,
                Collections.unmodifiableList(infos),
                Collections.unmodifiableMap(tensors));
    }

    private static int alignment(Path path, GgufMetadata metadata) {
        if (!metadata.has(ALIGNMENT_KEY)) {
            return DEFAULT_ALIGNMENT;
        }
        long a = metadata.getLong(ALIGNMENT_KEY);
        if (a <= 0 || a > (1 << 20) || Long.bitCount(a) != 1) {
            throw new ModelFormatException(
                    path, "%s = %d is not a power of two between 1 and 2^20".formatted(ALIGNMENT_KEY, a));
        }
        return (int) a;
    }

    private static TensorInfo tensorInfo(GgufReader r, long index) {
        Path path = r.path();
        long at = r.position();
        String name = r.string("name of tensor info #" + index);
        int nDims = r.u32("n_dims of tensor '" + name + "'");
        if (nDims < 1 || nDims > MAX_DIMS) {
            throw new ModelFormatException(
                    path,
                    "tensor '%s' (info at byte %d) has n_dims %d; expected 1 to %d"
                            .formatted(name, at, nDims & 0xFFFFFFFFL, MAX_DIMS));
        }
        long[] ne = new long[nDims];
        long elements = 1;
        for (int d = 0; d < nDims; d++) {
            ne[d] = r.u64("ne[" + d + "] of tensor '" + name + "'");
            if (ne[d] <= 0 || ne[d] > (1L << 40)) {
                throw new ModelFormatException(
                        path,
                        "tensor '%s' (info at byte %d) has dimension ne[%d] = %s; corrupt tensor info"
                                .formatted(name, at, d, Long.toUnsignedString(ne[d])));
            }
            elements = multiply(path, name, elements, ne[d]);
        }
        int typeId = r.u32("type of tensor '" + name + "'");
        long offset = r.u64("offset of tensor '" + name + "'");
        GgmlType type = GgmlType.byId(typeId);
        if (type == null) {
            throw new ModelFormatException(
                    path,
                    "tensor '%s' has unknown ggml type id %d; corrupt file or a newer ggml type"
                            .formatted(name, typeId & 0xFFFFFFFFL));
        }
        DType dtype = type.dtype();
        if (dtype == null) {
            throw new ModelFormatException(
                    path,
                    "tensor '%s' has type %s (ggml type %d), which the engine does not support; supported: %s"
                            .formatted(name, type, typeId, Arrays.toString(DType.values())));
        }
        if (ne[0] % dtype.blockSize() != 0) {
            throw new ModelFormatException(
                    path,
                    "tensor '%s' is %s with rows of %d values, not a multiple of its block size %d"
                            .formatted(name, type, ne[0], dtype.blockSize()));
        }
        return new TensorInfo(name, type, ne, offset, dtype.bytesFor(elements));
    }

    private static long multiply(Path path, String name, long a, long b) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw new ModelFormatException(
                    path, "tensor '%s' has more elements than fit in 64 bits; corrupt tensor info".formatted(name));
        }
    }

    private static void checkBounds(Path path, TensorInfo t, long dataStart, int alignment, long size) {
        if (t.offset() < 0 || t.offset() > size) {
            throw new ModelFormatException(
                    path,
                    "tensor '%s' has data offset %s, beyond the end of the %d-byte file"
                            .formatted(t.name(), Long.toUnsignedString(t.offset()), size));
        }
        if (t.offset() % alignment != 0) {
            throw new ModelFormatException(
                    path,
                    "tensor '%s' has data offset %d, not a multiple of the alignment %d"
                            .formatted(t.name(), t.offset(), alignment));
        }
        long begin = dataStart + t.offset();
        long end = begin + t.byteSize();
        if (end > size || end < begin) {
            throw new ModelFormatException(
                    path,
                    "tensor '%s' (%s ne=%s) spans bytes [%d, %d) but the file has %d bytes; truncated download?"
                            .formatted(t.name(), t.type(), Arrays.toString(t.ne()), begin, end, size));
        }
    }

    private static void checkOverlaps(Path path, List<TensorInfo> infos, long dataStart) {
        List<TensorInfo> sorted = new ArrayList<>(infos);
        sorted.sort(Comparator.comparingLong(TensorInfo::offset));
        for (int i = 1; i < sorted.size(); i++) {
            TensorInfo prev = sorted.get(i - 1);
            TensorInfo next = sorted.get(i);
            if (next.offset() < prev.offset() + prev.byteSize()) {
                throw new ModelFormatException(
                        path,
                        "tensors '%s' [%d, %d) and '%s' [%d, %d) overlap; corrupt tensor offsets"
                                .formatted(
                                        prev.name(),
                                        dataStart + prev.offset(),
                                        dataStart + prev.offset() + prev.byteSize(),
                                        next.name(),
                                        dataStart + next.offset(),
                                        dataStart + next.offset() + next.byteSize()));
            }
        }
    }

    /** {@code ne} reversed with size-1 outer dimensions dropped down to two; null when more than two remain. */
    private static long[] weightShape(long[] ne) {
        int dims = ne.length;
        while (dims > 2 && ne[dims - 1] == 1) {
            dims--;
        }
        if (dims > 2) {
            return null;
        }
        long[] shape = new long[dims];
        for (int i = 0; i < dims; i++) {
            shape[i] = ne[dims - 1 - i];
        }
        return shape;
    }

    public Path path() {
        return file.path();
    }

    /** The GGUF version, 2 or 3. */
    public int version() {
        return version;
    }

    public GgufMetadata metadata() {
        return metadata;
    }

    /** The data alignment in bytes ({@code general.alignment}, default 32). */
    public int alignment() {
        return alignment;
    }

    /** Absolute byte offset of the tensor data section. */
    public long dataStart() {
        return dataStart;
    }

    public long fileSize() {
        return file.size();
    }

    /** Every tensor info, in file order. */
    public List<TensorInfo> tensorInfos() {
        return infos;
    }

    /** The 1-D and 2-D tensors by name, in file order; views valid until {@link #close()}. */
    public Map<String, WeightTensor> tensors() {
        return tensors;
    }

    public boolean hasTensor(String name) {
        return tensors.containsKey(name);
    }

    /** @throws ModelFormatException when the file has no 1-D or 2-D tensor of that name */
    public WeightTensor tensor(String name) {
        WeightTensor t = tensors.get(name);
        if (t == null) {
            boolean listed = infos.stream().anyMatch(i -> i.name().equals(name));
            throw new ModelFormatException(
                    path(),
                    listed
                            ? "tensor '%s' has more than two dimensions; only 1-D and 2-D weights are supported"
                                    .formatted(name)
                            : "tensor '%s' is missing".formatted(name));
        }
        return t;
    }

    /** Unmaps the file; every tensor handed out becomes invalid. */
    @Override
    public void close() {
        file.close();
    }

    @Override
    public String toString() {
        return "GGUF v" + version + " " + path() + " (" + infos.size() + " tensors, "
                + metadata.keys().size() + " keys)";
    }
}
