package io.engram.state.codec;

/** How a stored block keeps its K and V values. */
public enum KvDType {
    /** Exact. 4 bytes per value. */
    F32(0),
    /** bfloat16, round to nearest even: 2 bytes per value, relative error below 2^-8. */
    BF16(1),
    /** int8 with one float scale per group of 32 values (max-abs / 127): ~1.1 bytes per value. */
    INT8(2),
    /**
     * 4-bit, symmetric: one float scale per group of 32 values (max-abs / 7), values rounded to -7..7 and stored as
     * two nibbles per byte (value + 8, low nibble first): 0.625 bytes per value, error at most half a step.
     */
    INT4(3);

    public static final int INT8_GROUP = 32;

    final int code;

    KvDType(int code) {
        this.code = code;
    }

    static KvDType of(int code, String what) {
        for (KvDType t : values()) {
            if (t.code == code) {
                return t;
            }
        }
        throw new CorruptMemoryException(what + ": unknown KV storage type " + code);
    }

    /** Bytes for {@code n} values (whole groups of 32 for INT8 and INT4, the last one padded). */
    long bytesFor(long n) {
        return switch (this) {
            case F32 -> 4 * n;
            case BF16 -> 2 * n;
            case INT8 -> (n + INT8_GROUP - 1) / INT8_GROUP * (4 + INT8_GROUP);
            case INT4 -> (n + INT8_GROUP - 1) / INT8_GROUP * (4 + INT8_GROUP / 2);
        };
    }
}
