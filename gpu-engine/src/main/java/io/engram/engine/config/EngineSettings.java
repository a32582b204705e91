package io.engram.engine.config;

/**
 * Validated engine settings.
 *
 * @param blockSize tokens per KV block: the unit memory policies move, score, store and evict
 * @param prefillChunk tokens per forward step when ingesting a long input (chunked prefill)
 * @param threads CPU worker threads
 * @param quantizeQ8 requantize float weight matrices to Q8_0 at load
 */
public record EngineSettings(int blockSize, int prefillChunk, int threads, boolean quantizeQ8) {
    public static final int DEFAULT_BLOCK_SIZE = 128;
    public static final int DEFAULT_PREFILL_CHUNK = 512;

    public EngineSettings {
        if (blockSize < 1 || blockSize > 1 << 16) {
            throw new IllegalArgumentException("block size must be in [1, 65536], got " + blockSize);
        }
        if (prefillChunk < 1) {
            throw new IllegalArgumentException("prefill chunk must be positive, got " + prefillChunk);
        }
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be positive, got " + threads);
        }
    }

    public static EngineSettings defaults() {
        return new EngineSettings(
                DEFAULT_BLOCK_SIZE, DEFAULT_PREFILL_CHUNK, Runtime.getRuntime().availableProcessors(), false);
    }

    public EngineSettings withBlockSize(int b) {
        return new EngineSettings(b, prefillChunk, threads, quantizeQ8);
    }

    public EngineSettings withPrefillChunk(int c) {
        return new EngineSettings(blockSize, c, threads, quantizeQ8);
    }

    public EngineSettings withThreads(int t) {
        return new EngineSettings(blockSize, prefillChunk, t, quantizeQ8);
    }

    public EngineSettings withQuantizeQ8(boolean q) {
        return new EngineSettings(blockSize, prefillChunk, threads, q);
    }
}
