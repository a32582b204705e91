package io.engram.engine.model.gguf;

import io.engram.engine.tensor.DType;

/**
 * The tensor storage types ggml defines (the {@code ggml_type} ids of {@code ggml.h}), named so that an unsupported
 * type can be reported by name. Only the types with a {@link #dtype()} can be loaded; ids 4 and 5 (the removed Q4_2
 * and Q4_3) and 31 to 33 (removed Q4_0_4_4 etc.) are not listed and read as unknown.
 */
public enum GgmlType {
    F32(0, DType.F32),
    F16(1, DType.F16),
    Q4_0(2, DType.Q4_0),
    Q4_1(3, null),
    Q5_0(6, null),
    Q5_1(7, null),
    Q8_0(8, DType.Q8_0),
    Q8_1(9, null),
    Q2_K(10, null),
    Q3_K(11, null),
    Q4_K(12, DType.Q4_K),
    Q5_K(13, null),
    Q6_K(14, DType.Q6_K),
    Q8_K(15, null),
    IQ2_XXS(16, null),
    IQ2_XS(17, null),
    IQ3_XXS(18, null),
    IQ1_S(19, null),
    IQ4_NL(20, null),
    IQ3_S(21, null),
    IQ2_S(22, null),
    IQ4_XS(23, null),
    I8(24, null),
    I16(25, null),
    I32(26, null),
    I64(27, null),
    F64(28, null),
    IQ1_M(29, null),
    BF16(30, DType.BF16),
    TQ1_0(34, null),
    TQ2_0(35, null);

    private final int id;
    private final DType dtype;

    GgmlType(int id, DType dtype) {
        this.id = id;
        this.dtype = dtype;
    }

    /** The {@code ggml_type} id stored in a GGUF tensor info. */
    public int id() {
        return id;
    }

    /** Our storage type for this ggml type, or null when the engine cannot load it. */
    public DType dtype() {
        return dtype;
    }

    /** The ggml type with this id, or null for an id ggml does not (or no longer) define. */
    public static GgmlType byId(int id) {
        for (GgmlType t : values()) {
            if (t.id == id) {
                return t;
            }
        }
        return null;
    }

    /** The ggml type that stores {@code dtype}; every {@link DType} has one. */
    public static GgmlType of(DType dtype) {
        return switch (dtype) {
            case F32 -> F32;
            case F16 -> F16;
            case BF16 -> BF16;
            case Q8_0 -> Q8_0;
            case Q4_0 -> Q4_0;
            case Q4_K -> Q4_K;
            case Q6_K -> Q6_K;
        };
    }
}
