package io.engram.engine.tokenizer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A minimal GGUF v2/v3 metadata reader for tests only (the engine's real GGUF reader lives in {@code model.gguf}):
 * reads the key/value section into Java values (numbers, booleans, strings, lists; f32 arrays as {@code float[]},
 * i32/u32 arrays as {@code int[]}) and builds a {@link GgufVocab} from the {@code tokenizer.ggml.*} keys.
 */
final class GgufTestMetadata {

    private GgufTestMetadata() {}

    static Map<String, Object> read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer buf = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size()).order(ByteOrder.LITTLE_ENDIAN);
            int magic = buf.getInt();
            if (magic != 0x46554747) { // "GGUF" little-endian
                throw new IOException(file + ": not a GGUF file (magic 0x%08X)".formatted(magic));
            }
            int version = buf.getInt();
            if (version < 2 || version > 3) {
                throw new IOException(file + ": GGUF version " + version + " not supported by this test reader");
            }
            buf.getLong(); // tensor count
            long nKv = buf.getLong();
            Map<String, Object> kv = new LinkedHashMap<>();
            for (long i = 0; i < nKv; i++) {
                String key = string(buf);
                kv.put(key, value(buf, buf.getInt()));
            }
            return kv;
        }
    }

    private static String string(ByteBuffer buf) {
        byte[] b = new byte[Math.toIntExact(buf.getLong())];
        buf.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private static Object value(ByteBuffer buf, int type) throws IOException {
        return switch (type) {
            case 0 -> buf.get() & 0xFF;
            case 1 -> (int) buf.get();
            case 2 -> buf.getShort() & 0xFFFF;
            case 3 -> (int) buf.getShort();
            case 4 -> buf.getInt() & 0xFFFFFFFFL;
            case 5 -> buf.getInt();
            case 6 -> buf.getFloat();
            case 7 -> buf.get() != 0;
            case 8 -> string(buf);
            case 9 -> array(buf);
            case 10, 11 -> buf.getLong();
            case 12 -> buf.getDouble();
            default -> throw new IOException("unknown GGUF value type " + type);
        };
    }

    private static Object array(ByteBuffer buf) throws IOException {
        int elemType = buf.getInt();
        int n = Math.toIntExact(buf.getLong());
        if (elemType == 6) {
            float[] out = new float[n];
            for (int i = 0; i < n; i++) {
                out[i] = buf.getFloat();
            }
            return out;
        }
        if (elemType == 4 || elemType == 5) {
            int[] out = new int[n];
            for (int i = 0; i < n; i++) {
                out[i] = buf.getInt();
            }
            return out;
        }
        List<Object> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(value(buf, elemType));
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    static GgufVocab vocab(Map<String, Object> kv) {
        return new GgufVocab(
                (String) kv.get("tokenizer.ggml.model"),
                (String) kv.get("tokenizer.ggml.pre"),
                (List<String>) kv.get("tokenizer.ggml.tokens"),
                (float[]) kv.get("tokenizer.ggml.scores"),
                (int[]) kv.get("tokenizer.ggml.token_type"),
                (List<String>) kv.getOrDefault("tokenizer.ggml.merges", List.of()),
                id(kv.get("tokenizer.ggml.bos_token_id")),
                id(kv.get("tokenizer.ggml.eos_token_id")),
                id(kv.get("tokenizer.ggml.unknown_token_id")),
                (Boolean) kv.getOrDefault("tokenizer.ggml.add_bos_token", Boolean.TRUE),
                (Boolean) kv.getOrDefault("tokenizer.ggml.add_eos_token", Boolean.FALSE),
                (Boolean) kv.get("tokenizer.ggml.add_space_prefix"));
    }

    private static Integer id(Object v) {
        return v == null ? null : Math.toIntExact(((Number) v).longValue());
    }
}
