package io.engram.state.codec;

import io.engram.engine.backend.Backend;
import io.engram.engine.kv.HeadRows;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.tensor.Quant;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * The persisted form of one KV block: a version byte, the storage type of K/V, a fixed header, per-token metadata
 * (token ids, positions, provenance tags, scores), every layer's K and V rows for the filled slots in that storage type
 * (little-endian), then a CRC32C of everything before it. Only the filled slots are written. Decoding checks version,
 * shape against the session's model and the checksum, and refuses with {@link CorruptMemoryException} instead of
 * handing out damaged memory.
 *
 * <pre>
 * u8 version=4 | u8 kvDType | i64 blockId | i64 firstSeq | i32 capacity | i32 length | i32 layers | i32 kvDim
 * | i32[length] tokens | i32[length] positions | i64[length] sources | f32[length] token scores (surprise, NaN unknown)
 * | i32 maskedKvHeads (0: every head kept) | i64[layers] dropped-head masks (only when maskedKvHeads > 0)
 * | per layer: keys, values, each length*(kvDim - dropped heads' dims) values (token by token, the kept heads in
 *   order) as F32, BF16, INT8 groups (f32 scale + 32 x i8) or INT4 groups (f32 scale + 16 bytes of two 4-bit values)
 * | u32 crc32c
 * </pre>
 *
 * <p>Dropped heads (DuoAttention's streaming heads behind their window, {@link KvBlock#droppedHeads}) are not written
 * and decode as zeros. Versions 3 (no head masks) and 2 (no token scores either) are still read.
 */
public final class KvBlockCodec {
    public static final byte VERSION = 4;
    private static final byte VERSION_WITHOUT_MASKS = 3;
    private static final byte VERSION_WITHOUT_SCORES = 2;
    private static final int HEADER = 1 + 1 + 8 + 8 + 4 * 4;

    private KvBlockCodec() {}

    /** Encodes with exact F32 values. */
    public static byte[] encode(KvBlock block, Backend backend, int kvDim) {
        return encode(block, backend, kvDim, KvDType.F32);
    }

    public static byte[] encode(KvBlock block, Backend backend, int kvDim, KvDType type) {
        int len = block.length();
        int layers = block.layers();
        long size = encodedSize(block, kvDim, type);
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(block + " is too large to encode (" + size + " bytes)");
        }
        ByteBuffer b = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
        b.put(VERSION)
                .put((byte) type.code)
                .putLong(block.id())
                .putLong(block.firstSeq())
                .putInt(block.capacity())
                .putInt(len)
                .putInt(layers)
                .putInt(kvDim);
        for (int i = 0; i < len; i++) {
            b.putInt(block.token(i));
        }
        for (int i = 0; i < len; i++) {
            b.putInt(block.position(i));
        }
        for (int i = 0; i < len; i++) {
            b.putLong(block.source(i));
        }
        for (int i = 0; i < len; i++) {
            b.putFloat(block.score(i));
        }
        int heads = block.maskedKvHeads();
        b.putInt(heads);
        for (int l = 0; heads > 0 && l < layers; l++) {
            b.putLong(block.droppedHeads(l));
        }
        float[] row = new float[len * kvDim];
        for (int l = 0; l < layers; l++) {
            long dropped = block.droppedHeads(l);
            if (block.vacant(l)) { // every head dropped: no rows kept, no buffers to read
                continue;
            }
            backend.read(block.keys(l), 0, row, 0, row.length);
            put(b, HeadRows.keep(row, len, kvDim, heads, dropped), type);
            backend.read(block.values(l), 0, row, 0, row.length);
            put(b, HeadRows.keep(row, len, kvDim, heads, dropped), type);
        }
        CRC32C crc = new CRC32C();
        crc.update(b.array(), 0, b.position());
        b.putInt((int) crc.getValue());
        return b.array();
    }

    /**
     * Rebuilds a block into {@code cache}'s backend memory (not attached; the caller attaches it).
     *
     * @param what names the block in error messages (session and block id)
     */
    public static KvBlock decode(byte[] bytes, KvCache cache, Backend backend, String what) {
        return decode(bytes, cache, backend, what, true);
    }

    /**
     * {@link #decode} of the block's tokens, positions, provenance and scores only, checked the same way: its layers
     * stay out of engine memory ({@link KvCache#allocateOffloaded}) and come back through the cache's unit store
     * ({@link #decodeLayer}) when a step needs them.
     */
    public static KvBlock decodeMeta(byte[] bytes, KvCache cache, String what) {
        return decode(bytes, cache, null, what, false);
    }

    private static KvBlock decode(byte[] bytes, KvCache cache, Backend backend, String what, boolean values) {
        if (bytes.length < HEADER + 4) {
            throw new CorruptMemoryException(
                    what + ": " + bytes.length + " bytes, shorter than a block header; truncated");
        }
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, bytes.length - 4);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int stored = b.getInt(bytes.length - 4);
        if (stored != (int) crc.getValue()) {
            throw new CorruptMemoryException("%s: checksum mismatch (stored %08x, computed %08x); the block is damaged"
                    .formatted(what, stored, (int) crc.getValue()));
        }
        byte version = version(b.get(), what);
        KvDType type = KvDType.of(b.get(), what);
        long id = b.getLong();
        long firstSeq = b.getLong();
        int capacity = b.getInt();
        int len = b.getInt();
        int layers = b.getInt();
        int kvDim = b.getInt();
        if (capacity != cache.blockSize()
                || layers != cache.layers()
                || kvDim != cache.kvDim()
                || len < 0
                || len > capacity) {
            throw new CorruptMemoryException(
                    "%s: block shape (capacity %d, length %d, layers %d, kvDim %d) does not fit the model's cache (block %d, layers %d, kvDim %d)"
                            .formatted(
                                    what,
                                    capacity,
                                    len,
                                    layers,
                                    kvDim,
                                    cache.blockSize(),
                                    cache.layers(),
                                    cache.kvDim()));
        }
        boolean scored = version != VERSION_WITHOUT_SCORES;
        Masks masks = masks(bytes, version, len, layers, kvDim, what);
        long expected = masks.valuesAt + masks.valueBytes(len, kvDim, type) + 4;
        if (bytes.length != expected) {
            throw new CorruptMemoryException(
                    what + ": " + bytes.length + " bytes where the header implies " + expected);
        }
        int[] tokens = new int[len];
        int[] positions = new int[len];
        long[] sources = new long[len];
        for (int i = 0; i < len; i++) {
            tokens[i] = b.getInt();
        }
        for (int i = 0; i < len; i++) {
            positions[i] = b.getInt();
        }
        for (int i = 0; i < len; i++) {
            sources[i] = b.getLong();
        }
        KvBlock block = values ? cache.allocateForRestore(id, firstSeq) : cache.allocateOffloaded(id, firstSeq);
        block.restore(len, tokens, positions, sources);
        if (scored) {
            for (int i = 0; i < len; i++) {
                block.setScore(i, b.getFloat());
            }
        }
        for (int l = 0; l < layers && masks.heads > 0; l++) {
            if (masks.dropped[l] != 0) {
                block.markDroppedHeads(l, masks.dropped[l], masks.heads);
            }
        }
        if (!values) {
            return block;
        }
        b.position((int) masks.valuesAt);
        float[] row = new float[len * kvDim];
        for (int l = 0; l < layers; l++) {
            if (block.vacant(l)) {
                continue;
            }
            float[] kept = new float[len * masks.keptDim(l, kvDim)];
            get(b, kept, type);
            HeadRows.spread(kept, row, len, kvDim, masks.heads, masks.dropped[l]);
            backend.write(block.keys(l), 0, row, 0, row.length);
            get(b, kept, type);
            HeadRows.spread(kept, row, len, kvDim, masks.heads, masks.dropped[l]);
            backend.write(block.values(l), 0, row, 0, row.length);
        }
        cache.releaseVacant(block);
        return block;
    }

    /**
     * Decodes only layer {@code layer}'s K and V rows of an encoded block into {@code keys} and {@code values} (at least
     * {@code length * kvDim} floats each), without building a block: what a retrieval needs when it brings one layer
     * of a stored block back. The caller has checked the bytes ({@link #header}: checksum and shape) when it read them.
     *
     * @return the block's length (tokens)
     * @throws CorruptMemoryException when the bytes are not a block of {@code kvDim} with that layer
     */
    public static int decodeLayer(byte[] bytes, int layer, int kvDim, float[] keys, float[] values, String what) {
        if (bytes.length < HEADER + 4) {
            throw new CorruptMemoryException(
                    what + ": " + bytes.length + " bytes, shorter than a block header; truncated");
        }
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        byte version = version(b.get(), what);
        KvDType type = KvDType.of(b.get(), what);
        b.position(1 + 1 + 8 + 8 + 4);
        int len = b.getInt();
        int layers = b.getInt();
        int dim = b.getInt();
        if (dim != kvDim
                || layer < 0
                || layer >= layers
                || len < 0
                || keys.length < len * kvDim
                || values.length < len * kvDim) {
            throw new CorruptMemoryException("%s: block of %d layers, kvDim %d, length %d has no layer %d of kvDim %d"
                    .formatted(what, layers, dim, len, layer, kvDim));
        }
        Masks masks = masks(bytes, version, len, layers, kvDim, what);
        long at = masks.valuesAt;
        for (int l = 0; l < layer; l++) {
            at += 2 * type.bytesFor((long) len * masks.keptDim(l, kvDim));
        }
        float[] kept = new float[len * masks.keptDim(layer, kvDim)];
        if (at + 2 * type.bytesFor(kept.length) + 4 > bytes.length) {
            throw new CorruptMemoryException(what + ": " + bytes.length + " bytes, too short for layer " + layer);
        }
        b.position((int) at);
        get(b, kept, type);
        HeadRows.spread(kept, keys, len, kvDim, masks.heads, masks.dropped[layer]);
        get(b, kept, type);
        HeadRows.spread(kept, values, len, kvDim, masks.heads, masks.dropped[layer]);
        return len;
    }

    /**
     * Bytes of an encoded block holding {@code length} tokens: what {@link #encode} writes for that shape and type.
     *
     * @throws IllegalArgumentException for a negative length or non-positive layers/kvDim
     */
    public static long encodedSize(int length, int layers, int kvDim, KvDType type) {
        if (length < 0 || layers < 1 || kvDim < 1) {
            throw new IllegalArgumentException(
                    "no block has length %d, %d layers, kvDim %d".formatted(length, layers, kvDim));
        }
        return HEADER + (long) length * (4 + 4 + 8 + 4) + 4 + 2L * layers * type.bytesFor((long) length * kvDim) + 4;
    }

    /** Bytes the blocks of {@code mem} take stored as {@code type} (what {@link #encode} writes for each). */
    public static long encodedSize(KvCache mem, KvDType type) {
        long bytes = 0;
        for (KvBlock b : mem.blocks()) {
            bytes += encodedSize(b, mem.kvDim(), type);
        }
        return bytes;
    }

    /** Bytes {@link #encode} writes for {@code block} as it is now (its dropped heads left out). */
    public static long encodedSize(KvBlock block, int kvDim, KvDType type) {
        int heads = block.maskedKvHeads();
        if (heads == 0) {
            return encodedSize(block.length(), block.layers(), kvDim, type);
        }
        long size = HEADER + (long) block.length() * (4 + 4 + 8 + 4) + 4 + 8L * block.layers() + 4;
        for (int l = 0; l < block.layers(); l++) {
            size += 2 * type.bytesFor((long) block.length() * HeadRows.keptDim(kvDim, heads, block.droppedHeads(l)));
        }
        return size;
    }

    private static byte version(byte version, String what) {
        if (version != VERSION && version != VERSION_WITHOUT_MASKS && version != VERSION_WITHOUT_SCORES) {
            throw new CorruptMemoryException(what + ": unknown block format version " + version + " (this build reads "
                    + VERSION_WITHOUT_SCORES + " to " + VERSION + ")");
        }
        return version;
    }

    /** The dropped-head masks of an encoded block and where its K/V rows start. */
    private record Masks(int heads, long[] dropped, long valuesAt) {
        int keptDim(int layer, int kvDim) {
            return heads == 0 ? kvDim : HeadRows.keptDim(kvDim, heads, dropped[layer]);
        }

        long valueBytes(int len, int kvDim, KvDType type) {
            long n = 0;
            for (int l = 0; l < dropped.length; l++) {
                n += 2 * type.bytesFor((long) len * keptDim(l, kvDim));
            }
            return n;
        }
    }

    private static Masks masks(byte[] bytes, byte version, int len, int layers, int kvDim, String what) {
        long at = HEADER + (long) len * (version == VERSION_WITHOUT_SCORES ? 16 : 20);
        if (version != VERSION) {
            return new Masks(0, new long[layers], at);
        }
        if (at + 4 > bytes.length) {
            throw new CorruptMemoryException(what + ": " + bytes.length + " bytes, too short for its head masks");
        }
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int heads = b.getInt((int) at);
        at += 4;
        long[] dropped = new long[layers];
        if (heads == 0) {
            return new Masks(0, dropped, at);
        }
        if (heads < 0 || heads > Long.SIZE || kvDim % heads != 0 || at + 8L * layers > bytes.length) {
            throw new CorruptMemoryException(
                    "%s: %d masked KV heads do not divide kvDim %d".formatted(what, heads, kvDim));
        }
        for (int l = 0; l < layers; l++) {
            dropped[l] = b.getLong((int) at + 8 * l);
            if (heads < Long.SIZE && dropped[l] >>> heads != 0) {
                throw new CorruptMemoryException(
                        "%s: layer %d drops heads %x of %d".formatted(what, l, dropped[l], heads));
            }
        }
        return new Masks(heads, dropped, at + 8L * layers);
    }

    /**
     * The header of an encoded block, read without a model: for tools that list stored memory.
     *
     * @param checksumOk whether the stored CRC32C matches the bytes (the other fields are unreliable when it does not)
     */
    public record Header(
            int version,
            KvDType dtype,
            long blockId,
            long firstSeq,
            int capacity,
            int length,
            int layers,
            int kvDim,
            int checksum,
            boolean checksumOk) {}

    /**
     * Reads the header of {@code bytes} and verifies its checksum, without decoding the values.
     *
     * @throws CorruptMemoryException when the bytes are too short for a header, or of an unknown version or type
     */
    public static Header header(byte[] bytes, String what) {
        if (bytes.length < HEADER + 4) {
            throw new CorruptMemoryException(
                    what + ": " + bytes.length + " bytes, shorter than a block header; truncated");
        }
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, bytes.length - 4);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int stored = b.getInt(bytes.length - 4);
        byte version = version(b.get(), what);
        KvDType type = KvDType.of(b.get(), what);
        return new Header(
                version,
                type,
                b.getLong(),
                b.getLong(),
                b.getInt(),
                b.getInt(),
                b.getInt(),
                b.getInt(),
                stored,
                stored == (int) crc.getValue());
    }

    /** The CRC32C an encoded block carries in its last 4 bytes (of everything before them). */
    public static int checksum(byte[] encoded) {
        if (encoded.length < 4) {
            throw new CorruptMemoryException("an encoded block of " + encoded.length + " bytes has no checksum");
        }
        return ByteBuffer.wrap(encoded).order(ByteOrder.LITTLE_ENDIAN).getInt(encoded.length - 4);
    }

    private static void put(ByteBuffer b, float[] v, KvDType type) {
        switch (type) {
            case F32 -> {
                b.asFloatBuffer().put(v);
                b.position(b.position() + v.length * 4);
            }
            case BF16 -> {
                for (float x : v) {
                    b.putShort(Quant.floatToBf16(x));
                }
            }
            case INT8 -> {
                for (int g = 0; g < v.length; g += KvDType.INT8_GROUP) {
                    int end = Math.min(v.length, g + KvDType.INT8_GROUP);
                    float amax = maxAbs(v, g, end);
                    float scale = amax / 127f;
                    float inv = scale == 0 ? 0 : 1 / scale;
                    b.putFloat(scale);
                    for (int i = g; i < g + KvDType.INT8_GROUP; i++) {
                        b.put(i < end ? (byte) Math.max(-127, Math.min(127, Math.round(v[i] * inv))) : 0);
                    }
                }
            }
            case INT4 -> {
                for (int g = 0; g < v.length; g += KvDType.INT8_GROUP) {
                    int end = Math.min(v.length, g + KvDType.INT8_GROUP);
                    float amax = maxAbs(v, g, end);
                    float scale = amax / 7f;
                    float inv = scale == 0 ? 0 : 1 / scale;
                    b.putFloat(scale);
                    for (int i = g; i < g + KvDType.INT8_GROUP; i += 2) {
                        int lo = i < end ? Math.max(-7, Math.min(7, Math.round(v[i] * inv))) + 8 : 8;
                        int hi = i + 1 < end ? Math.max(-7, Math.min(7, Math.round(v[i + 1] * inv))) + 8 : 8;
                        b.put((byte) (lo | hi << 4));
                    }
                }
            }
        }
    }

    private static float maxAbs(float[] v, int from, int to) {
        float amax = 0;
        for (int i = from; i < to; i++) {
            amax = Math.max(amax, Math.abs(v[i]));
        }
        return amax;
    }

    private static void get(ByteBuffer b, float[] v, KvDType type) {
        switch (type) {
            case F32 -> {
                b.asFloatBuffer().get(v);
                b.position(b.position() + v.length * 4);
            }
            case BF16 -> {
                for (int i = 0; i < v.length; i++) {
                    v[i] = Quant.bf16ToFloat(b.getShort());
                }
            }
            case INT8 -> {
                for (int g = 0; g < v.length; g += KvDType.INT8_GROUP) {
                    float scale = b.getFloat();
                    for (int i = g; i < g + KvDType.INT8_GROUP; i++) {
                        byte q = b.get();
                        if (i < v.length) {
                            v[i] = q * scale;
                        }
                    }
                }
            }
            case INT4 -> {
                for (int g = 0; g < v.length; g += KvDType.INT8_GROUP) {
                    float scale = b.getFloat();
                    for (int i = g; i < g + KvDType.INT8_GROUP; i += 2) {
                        int packed = b.get() & 0xff;
                        if (i < v.length) {
                            v[i] = ((packed & 0x0f) - 8) * scale;
                        }
                        if (i + 1 < v.length) {
                            v[i + 1] = ((packed >>> 4) - 8) * scale;
                        }
                    }
                }
            }
        }
    }
}
