package io.engram.engine.model.gguf;

import io.engram.engine.config.ModelFormatException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A bounds-checked little-endian cursor over a GGUF file's header. Every read names what it reads, so running off the
 * end of a truncated file reports the item and its byte offset. Not thread-safe; used only while opening.
 */
final class GgufReader {
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 =
            ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final MemorySegment seg;
    private long pos;

    GgufReader(Path path, MemorySegment seg) {
        this.path = path;
        this.seg = seg;
    }

    Path path() {
        return path;
    }

    long position() {
        return pos;
    }

    long size() {
        return seg.byteSize();
    }

    long remaining() {
        return seg.byteSize() - pos;
    }

    private void need(long n, String what) {
        if (n > remaining()) {
            throw new ModelFormatException(
                    path,
                    "unexpected end of file reading %s at byte %d (%d bytes needed, the file has %d); truncated?"
                            .formatted(what, pos, n, seg.byteSize()));
        }
    }

    int u32(String what) {
        need(4, what);
        int v = seg.get(I32, pos);
        pos += 4;
        return v;
    }

    /** A u64 as a long; values above {@code Long.MAX_VALUE} come back negative, and callers treat them as corrupt. */
    long u64(String what) {
        need(8, what);
        long v = seg.get(I64, pos);
        pos += 8;
        return v;
    }

    String string(String what) {
        long at = pos;
        long len = u64("length of " + what);
        if (len < 0 || len > remaining() || len > Integer.MAX_VALUE - 8) {
            throw new ModelFormatException(
                    path,
                    "%s at byte %d claims %s bytes but only %d remain; corrupt or truncated"
                            .formatted(what, at, Long.toUnsignedString(len), remaining()));
        }
        byte[] b = seg.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE);
        pos += len;
        return new String(b, StandardCharsets.UTF_8);
    }

    private GgufValueType valueType(String what) {
        long at = pos;
        int id = u32("type of " + what);
        GgufValueType t = GgufValueType.byId(id);
        if (t == null) {
            throw new ModelFormatException(
                    path,
                    "%s at byte %d has unknown value type %d; corrupt metadata".formatted(what, at, id & 0xFFFFFFFFL));
        }
        return t;
    }

    /** One metadata value (type id, then the value) for {@code key}. */
    GgufMetadata.Value value(String key) {
        String what = "metadata '" + key + "'";
        GgufValueType type = valueType(what);
        if (type != GgufValueType.ARRAY) {
            return new GgufMetadata.Value(type, null, scalar(type, what));
        }
        long at = pos;
        GgufValueType et = valueType("elements of " + what);
        long n = u64("length of " + what);
        long minBytes = et == GgufValueType.STRING ? 8 : Math.max(1, et.size());
        if (et == GgufValueType.ARRAY) {
            throw new ModelFormatException(
                    path, "%s at byte %d is an array of arrays, which is not supported".formatted(what, at));
        }
        if (n < 0 || n > remaining() / minBytes) {
            throw new ModelFormatException(
                    path,
                    "%s at byte %d claims %s elements of %s but only %d bytes remain; corrupt or truncated"
                            .formatted(what, at, Long.toUnsignedString(n), et, remaining()));
        }
        int count = (int) n;
        Object values = switch (et) {
            case FLOAT32 -> {
                float[] a = new float[count];
                MemorySegment.copy(seg, F32, pos, a, 0, count);
                pos += 4L * count;
                yield a;
            }
            case FLOAT64 -> {
                double[] a = new double[count];
                MemorySegment.copy(seg, F64, pos, a, 0, count);
                pos += 8L * count;
                yield a;
            }
            case BOOL -> {
                boolean[] a = new boolean[count];
                for (int i = 0; i < count; i++) {
                    a[i] = seg.get(ValueLayout.JAVA_BYTE, pos++) != 0;
                }
                yield a;
            }
            case STRING -> {
                List<String> a = new ArrayList<>(count);
                for (int i = 0; i < count; i++) {
                    a.add(string(what + "[" + i + "]"));
                }
                yield Collections.unmodifiableList(a);
            }
            default -> {
                long[] a = new long[count];
                for (int i = 0; i < count; i++) {
                    a[i] = (Long) scalar(et, what);
                }
                yield a;
            }
        };
        return new GgufMetadata.Value(type, et, values);
    }

    private Object scalar(GgufValueType type, String what) {
        if (type == GgufValueType.STRING) {
            return string(what);
        }
        need(type.size(), what);
        long p = pos;
        pos += type.size();
        return switch (type) {
            case UINT8 -> (long) (seg.get(ValueLayout.JAVA_BYTE, p) & 0xFF);
            case INT8 -> (long) seg.get(ValueLayout.JAVA_BYTE, p);
            case UINT16 -> (long) (seg.get(I16, p) & 0xFFFF);
            case INT16 -> (long) seg.get(I16, p);
            case UINT32 -> seg.get(I32, p) & 0xFFFFFFFFL;
            case INT32 -> (long) seg.get(I32, p);
            case UINT64, INT64 -> seg.get(I64, p);
            case FLOAT32 -> seg.get(F32, p);
            case FLOAT64 -> seg.get(F64, p);
            case BOOL -> seg.get(ValueLayout.JAVA_BYTE, p) != 0;
            case STRING, ARRAY -> throw new IllegalStateException(type.name());
        };
    }
}
