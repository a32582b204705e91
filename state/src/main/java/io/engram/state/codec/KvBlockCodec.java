package io.engram.state.codec;

import io.engram.engine.backend.Backend;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * The persisted form of one KV block: a version byte, a fixed header, per-token metadata (token ids, positions,
 * provenance tags), every layer's K and V rows for the filled slots as little-endian F32, then a CRC32C of everything
 * before it. Only the filled slots are written. Decoding checks version, shape against the session's model and the
 * checksum, and refuses with {@link CorruptMemoryException} instead of handing out damaged memory.
 *
 * <pre>
 * u8 version=1 | i64 blockId | i64 firstSeq | i32 capacity | i32 length | i32 layers | i32 kvDim
 * | i32[length] tokens | i32[length] positions | i64[length] sources
 * | per layer: f32[length*kvDim] keys, f32[length*kvDim] values | u32 crc32c
 * </pre>
 */
public final class KvBlockCodec {
    public static final byte VERSION = 1;
    private static final int HEADER = 1 + 8 + 8 + 4 * 4;

    private KvBlockCodec() {}

    public static byte[] encode(KvBlock block, Backend backend, int kvDim) {
        int len = block.length();
        int layers = block.layers();
        long size = HEADER + (long) len * (4 + 4 + 8) + 2L * layers * len * kvDim * 4 + 4;
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(block + " is too large to encode (" + size + " bytes)");
        }
        ByteBuffer b = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
        b.put(VERSION).putLong(block.id()).putLong(block.firstSeq()).putInt(block.capacity()).putInt(len).putInt(layers).putInt(kvDim);
        for (int i = 0; i < len; i++) {
            b.putInt(block.token(i));
        }
        for (int i = 0; i < len; i++) {
            b.putInt(block.position(i));
        }
        for (int i = 0; i < len; i++) {
            b.putLong(block.source(i));
        }
        float[] row = new float[len * kvDim];
        for (int l = 0; l < layers; l++) {
            backend.read(block.keys(l), 0, row, 0, row.length);
            b.asFloatBuffer().put(row);
            b.position(b.position() + row.length * 4);
            backend.read(block.values(l), 0, row, 0, row.length);
            b.asFloatBuffer().put(row);
            b.position(b.position() + row.length * 4);
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
        if (bytes.length < HEADER + 4) {
            throw new CorruptMemoryException(what + ": " + bytes.length + " bytes, shorter than a block header; truncated");
        }
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, bytes.length - 4);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int stored = b.getInt(bytes.length - 4);
        if (stored != (int) crc.getValue()) {
            throw new CorruptMemoryException("%s: checksum mismatch (stored %08x, computed %08x); the block is damaged"
                    .formatted(what, stored, (int) crc.getValue()));
        }
        byte version = b.get();
        if (version != VERSION) {
            throw new CorruptMemoryException(what + ": unknown block format version " + version + " (this build reads " + VERSION + ")");
        }
        long id = b.getLong();
        long firstSeq = b.getLong();
        int capacity = b.getInt();
        int len = b.getInt();
        int layers = b.getInt();
        int kvDim = b.getInt();
        if (capacity != cache.blockSize() || layers != cache.layers() || kvDim != cache.kvDim() || len < 0 || len > capacity) {
            throw new CorruptMemoryException("%s: block shape (capacity %d, length %d, layers %d, kvDim %d) does not fit the model's cache (block %d, layers %d, kvDim %d)"
                    .formatted(what, capacity, len, layers, kvDim, cache.blockSize(), cache.layers(), cache.kvDim()));
        }
        long expected = HEADER + (long) len * 16 + 2L * layers * len * kvDim * 4 + 4;
        if (bytes.length != expected) {
            throw new CorruptMemoryException(what + ": " + bytes.length + " bytes where the header implies " + expected);
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
        KvBlock block = cache.allocateForRestore(id, firstSeq);
        block.restore(len, tokens, positions, sources);
        float[] row = new float[len * kvDim];
        for (int l = 0; l < layers; l++) {
            b.asFloatBuffer().get(row);
            b.position(b.position() + row.length * 4);
            backend.write(block.keys(l), 0, row, 0, row.length);
            b.asFloatBuffer().get(row);
            b.position(b.position() + row.length * 4);
            backend.write(block.values(l), 0, row, 0, row.length);
        }
        return block;
    }
}
