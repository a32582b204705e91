package io.engram.engine.model.gguf;

import io.engram.engine.config.ModelFormatException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The key-value metadata of a GGUF file, in file order, with typed accessors. A getter throws
 * {@link ModelFormatException} naming the file, the key, the type found and the type expected; getters with a default
 * return it only when the key is absent, never when it has the wrong type. Immutable and thread-safe.
 */
public final class GgufMetadata {

    /**
     * One metadata value as stored. {@code value} is a {@code Long} for every integer type (a UINT64 above
     * {@code Long.MAX_VALUE} keeps its bits), {@code Float}, {@code Double}, {@code Boolean} or {@code String} for the
     * others; for an ARRAY it is a {@code long[]}, {@code float[]}, {@code double[]}, {@code boolean[]} or
     * {@code List<String>} according to {@code elementType} (null for scalars).
     */
    public record Value(GgufValueType type, GgufValueType elementType, Object value) {}

    private final Path file;
    private final Map<String, Value> entries;

    GgufMetadata(Path file, Map<String, Value> entries) {
        this.file = file;
        this.entries = Collections.unmodifiableMap(entries);
    }

    /** Every entry in file order. */
    public Map<String, Value> entries() {
        return entries;
    }

    public Set<String> keys() {
        return entries.keySet();
    }

    public boolean has(String key) {
        return entries.containsKey(key);
    }

    /** The stored type of {@code key}, or null when absent. */
    public GgufValueType type(String key) {
        Value v = entries.get(key);
        return v == null ? null : v.type();
    }

    public String getString(String key) {
        return (String) require(key, GgufValueType.STRING).value();
    }

    public String getString(String key, String defaultValue) {
        return has(key) ? getString(key) : defaultValue;
    }

    /** Any integer type whose value fits an {@code int}. */
    public int getInt(String key) {
        return toInt(key, getLong(key));
    }

    public int getInt(String key, int defaultValue) {
        return has(key) ? getInt(key) : defaultValue;
    }

    /** Any integer type whose value fits a {@code long}. */
    public long getLong(String key) {
        Value v = require(key, null);
        if (!v.type().isInteger()) {
            throw wrongType(key, v, "an integer");
        }
        long x = (Long) v.value();
        if (v.type() == GgufValueType.UINT64 && x < 0) {
            throw new ModelFormatException(
                    file, "metadata key '%s' is UINT64 %s, too large".formatted(key, Long.toUnsignedString(x)));
        }
        return x;
    }

    /** FLOAT32, or FLOAT64 narrowed to float. */
    public float getFloat(String key) {
        Value v = require(key, null);
        return switch (v.type()) {
            case FLOAT32 -> (Float) v.value();
            case FLOAT64 -> (float) (double) (Double) v.value();
            default -> throw wrongType(key, v, "FLOAT32");
        };
    }

    public float getFloat(String key, float defaultValue) {
        return has(key) ? getFloat(key) : defaultValue;
    }

    public boolean getBoolean(String key) {
        return (Boolean) require(key, GgufValueType.BOOL).value();
    }

    public boolean getBoolean(String key, boolean defaultValue) {
        return has(key) ? getBoolean(key) : defaultValue;
    }

    /** An ARRAY of STRING; the list is unmodifiable. */
    @SuppressWarnings("unchecked")
    public List<String> getStringList(String key) {
        return (List<String>) requireArray(key, GgufValueType.STRING).value();
    }

    /** An ARRAY of FLOAT32 (or FLOAT64, narrowed); a fresh copy. */
    public float[] getFloatArray(String key) {
        Value v = requireArray(key, null);
        if (v.elementType() == GgufValueType.FLOAT32) {
            return ((float[]) v.value()).clone();
        }
        if (v.elementType() == GgufValueType.FLOAT64) {
            double[] d = (double[]) v.value();
            float[] f = new float[d.length];
            for (int i = 0; i < d.length; i++) {
                f[i] = (float) d[i];
            }
            return f;
        }
        throw wrongType(key, v, "ARRAY of FLOAT32");
    }

    /** An ARRAY of any integer type whose values all fit an {@code int}; a fresh copy. */
    public int[] getIntArray(String key) {
        Value v = requireArray(key, null);
        if (!v.elementType().isInteger()) {
            throw wrongType(key, v, "ARRAY of an integer type");
        }
        long[] l = (long[]) v.value();
        int[] out = new int[l.length];
        for (int i = 0; i < l.length; i++) {
            if (v.elementType() == GgufValueType.UINT64 && l[i] < 0) {
                throw new ModelFormatException(file, "metadata key '%s' element %d is too large".formatted(key, i));
            }
            out[i] = toInt(key + "[" + i + "]", l[i]);
        }
        return out;
    }

    private int toInt(String key, long x) {
        if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
            throw new ModelFormatException(file, "metadata key '%s' = %d does not fit a 32-bit int".formatted(key, x));
        }
        return (int) x;
    }

    private Value require(String key, GgufValueType expected) {
        Value v = entries.get(key);
        if (v == null) {
            throw new ModelFormatException(file, "missing metadata key '%s'".formatted(key));
        }
        if (expected != null && v.type() != expected) {
            throw wrongType(key, v, expected.name());
        }
        return v;
    }

    private Value requireArray(String key, GgufValueType elementType) {
        Value v = require(key, GgufValueType.ARRAY);
        if (elementType != null && v.elementType() != elementType) {
            throw wrongType(key, v, "ARRAY of " + elementType);
        }
        return v;
    }

    private ModelFormatException wrongType(String key, Value v, String expected) {
        String found = v.type() == GgufValueType.ARRAY
                ? "ARRAY of " + v.elementType()
                : v.type().name();
        return new ModelFormatException(
                file, "metadata key '%s' has type %s; expected %s".formatted(key, found, expected));
    }

    @Override
    public String toString() {
        return entries.size() + " metadata keys of " + file;
    }
}
