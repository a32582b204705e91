package io.engram.engine.backend;

/** Which dimensions of a head RoPE rotates together. */
public enum RopeStyle {
    /** Hugging Face {@code rotate_half}: dimension i pairs with i + d/2 (ggml "neox"). */
    HALF,
    /** Meta / llama2.c / GGUF "llama": dimension 2i pairs with 2i+1 (ggml "norm"). */
    INTERLEAVED
}
