package io.engram.engine.tensor;

/**
 * Storage types of weights and tensors on disk and in memory. Every loader and kernel switches on this enum
 * exhaustively. Quantized types store {@link #blockSize()} consecutive values of one row in {@link #bytesPerBlock()}
 * bytes; a row's length must be a multiple of the block size.
 */
public enum DType {
    F32(1, 4),
    F16(1, 2),
    BF16(1, 2),
    /** ggml Q8_0: per 32 values an fp16 scale d then 32 int8 q; value = d * q. */
    Q8_0(32, 34),
    /** ggml Q4_0: per 32 values an fp16 scale d then 16 bytes of nibbles (low nibbles = values 0..15, high = 16..31); value = d * (q - 8). */
    Q4_0(32, 18),
    /** ggml Q4_K: super-blocks of 256 values (8 sub-blocks of 32) with 6-bit scales and mins; fp16 d and dmin. */
    Q4_K(256, 144),
    /** ggml Q6_K: super-blocks of 256 values, 6-bit quants in 16 sub-blocks with int8 scales; fp16 d. */
    Q6_K(256, 210);

    private final int blockSize;
    private final int bytesPerBlock;

    DType(int blockSize, int bytesPerBlock) {
        this.blockSize = blockSize;
        this.bytesPerBlock = bytesPerBlock;
    }

    /** Values per quantization block (1 for plain float types). */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes one block occupies. */
    public int bytesPerBlock() {
        return bytesPerBlock;
    }

    public boolean isQuantized() {
        return blockSize > 1;
    }

    /**
     * Bytes needed for {@code elements} values.
     *
     * @throws IllegalArgumentException when {@code elements} is not a multiple of the block size
     */
    public long bytesFor(long elements) {
        if (elements % blockSize != 0) {
            throw new IllegalArgumentException(
                    "%s stores values in blocks of %d; %d values is not a whole number of blocks"
                            .formatted(this, blockSize, elements));
        }
        return Math.multiplyExact(elements / blockSize, (long) bytesPerBlock);
    }
}
