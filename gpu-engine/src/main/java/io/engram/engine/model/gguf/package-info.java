/**
 * GGUF model files (llama.cpp's format): {@link io.engram.engine.model.gguf.GgufFile} maps and validates the container
 * and hands out tensors as {@link io.engram.engine.tensor.WeightTensor} views; {@link io.engram.engine.model.gguf.GgufModel}
 * assembles a Llama-family {@link io.engram.engine.config.ModelConfig} and {@link io.engram.engine.model.ModelWeights}
 * from the llama.cpp metadata keys and tensor names; {@link io.engram.engine.model.gguf.GgufTokenizerMetadata} exposes
 * the embedded tokenizer for the tokenizer package.
 *
 * <p>Checked by the {@code Gguf*} tests: the shared stories260K files, a test-side GGUF writer (round trip, corrupt
 * files, tiny random models) and llama.cpp through {@code de.kherud:llama} ({@code LlamaCppReference}).
 */
package io.engram.engine.model.gguf;
