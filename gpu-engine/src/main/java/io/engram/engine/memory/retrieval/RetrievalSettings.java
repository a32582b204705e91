package io.engram.engine.memory.retrieval;

/**
 * Settings of {@link RetrievalMemory}. Defaults follow the papers' configurations (algorithms.md sections 2.4 and 3.3).
 *
 * @param initTokens first tokens of the stream every query attends to (InfLLM {@code n_init}, 128)
 * @param localTokens sliding window of recent tokens attended with their relative positions ({@code n_local}, 4096)
 * @param reprTokens tokens whose keys represent a unit for retrieval, per layer and KV head ({@code repr_topk}, 4)
 * @param topUnits InfLLM: units retrieved per layer and step (16); 0 selects by {@code memoryTokens} instead
 * @param memoryTokens EM-LLM: tokens of memory retrieved per layer and step ({@code n_mem}, 2048); used when
 *     {@code topUnits} is 0
 * @param contiguity EM-LLM: share of the memory budget given to the temporal-contiguity buffer (neighbours of the
 *     retrieved events; 0 = off, the paper's value is 0.3)
 * @param cachedBlocks storage blocks of retrieved memory kept in engine memory per layer (LRU; InfLLM
 *     {@code max_cached_block}, 32); never fewer than a step needs
 * @param segmentation how memory is cut into units
 * @param lexicalUnits on a question's steps, units the question's tokens match best (each with the next unit) retrieved
 *     on top of the ranked ones ({@link LexicalMatch}; 0 = none, the papers' method)
 */
public record RetrievalSettings(
        int initTokens,
        int localTokens,
        int reprTokens,
        int topUnits,
        int memoryTokens,
        double contiguity,
        int cachedBlocks,
        Segmentation segmentation,
        int lexicalUnits) {

    /** How tokens that leave the local window are cut into memory units. */
    public sealed interface Segmentation permits Uniform, Surprise {}

    /** InfLLM: one unit per storage block (block size tokens, 128 by default). */
    public record Uniform() implements Segmentation {}

    /** EM-LLM's optional boundary refinement on key similarity (algorithms.md section 3.2 step 4). */
    public enum Refinement {
        NONE,
        /** Move each boundary to the split of its neighbourhood with the highest graph modularity. */
        MODULARITY,
        /** Move each boundary to the split of its neighbourhood with the lowest conductance. */
        CONDUCTANCE
    }

    /**
     * EM-LLM: a unit (event) ends before a token whose surprise exceeds {@code mean + gamma * std} of the surprises of
     * up to {@code localTokens} tokens before its step; events shorter than {@code minTokens} merge into the next one,
     * longer ones are cut into {@code maxTokens} pieces. With a refinement, each boundary found in a step then moves to
     * the best split of its neighbourhood by the similarity of raw keys summed over layers from {@code refineFromLayer}.
     */
    public record Surprise(double gamma, int minTokens, int maxTokens, Refinement refinement, int refineFromLayer)
            implements Segmentation {
        public Surprise {
            if (minTokens < 1 || maxTokens < minTokens) {
                throw new IllegalArgumentException(
                        "event sizes need 1 <= min <= max, got %d and %d".formatted(minTokens, maxTokens));
            }
            if (refinement == null || refineFromLayer < -1) {
                throw new IllegalArgumentException(
                        "a refinement (NONE, MODULARITY, CONDUCTANCE) and a layer >= 0 (or -1: "
                                + "the last 3/8 of the layers) are required");
            }
        }

        public Surprise(double gamma, int minTokens, int maxTokens) {
            this(gamma, minTokens, maxTokens, Refinement.NONE, 0);
        }
    }

    /** Settings without lexical matching (the papers' retrieval). */
    public RetrievalSettings(
            int initTokens,
            int localTokens,
            int reprTokens,
            int topUnits,
            int memoryTokens,
            double contiguity,
            int cachedBlocks,
            Segmentation segmentation) {
        this(initTokens, localTokens, reprTokens, topUnits, memoryTokens, contiguity, cachedBlocks, segmentation, 0);
    }

    public RetrievalSettings {
        if (initTokens < 0
                || localTokens < 1
                || reprTokens < 1
                || topUnits < 0
                || memoryTokens < 0
                || cachedBlocks < 0
                || lexicalUnits < 0) {
            throw new IllegalArgumentException("retrieval settings out of range: " + this);
        }
        if (topUnits == 0 && memoryTokens == 0) {
            throw new IllegalArgumentException("either a unit count or a memory token budget must be positive");
        }
        if (contiguity < 0 || contiguity >= 1) {
            throw new IllegalArgumentException("contiguity share must be in [0, 1), got " + contiguity);
        }
    }

    /** InfLLM's defaults: 128 init + 4096 local + 16 units of one block, 4 representative tokens, 32 cached blocks. */
    public static RetrievalSettings infLlm() {
        return new RetrievalSettings(128, 4096, 4, 16, 0, 0, 32, new Uniform());
    }

    /**
     * EM-LLM's full method: 128 init + 4096 local + 2048 memory tokens, events of 8..128 tokens at gamma 1.0, refined
     * by modularity on the keys of the last 3/8 of the layers, 30% of the budget for the temporal-contiguity buffer.
     */
    public static RetrievalSettings emLlm() {
        return new RetrievalSettings(
                128, 4096, 4, 0, 2048, 0.3, 32, new Surprise(1.0, 8, 128, Refinement.MODULARITY, -1));
    }

    public RetrievalSettings withWindow(int init, int local) {
        return new RetrievalSettings(
                init, local, reprTokens, topUnits, memoryTokens, contiguity, cachedBlocks, segmentation, lexicalUnits);
    }

    public RetrievalSettings withTopUnits(int k) {
        return new RetrievalSettings(
                initTokens,
                localTokens,
                reprTokens,
                k,
                memoryTokens,
                contiguity,
                cachedBlocks,
                segmentation,
                lexicalUnits);
    }

    public RetrievalSettings withMemoryTokens(int tokens, double contiguityShare) {
        return new RetrievalSettings(
                initTokens,
                localTokens,
                reprTokens,
                0,
                tokens,
                contiguityShare,
                cachedBlocks,
                segmentation,
                lexicalUnits);
    }

    public RetrievalSettings withCachedBlocks(int blocks) {
        return new RetrievalSettings(
                initTokens,
                localTokens,
                reprTokens,
                topUnits,
                memoryTokens,
                contiguity,
                blocks,
                segmentation,
                lexicalUnits);
    }

    public RetrievalSettings withReprTokens(int r) {
        return new RetrievalSettings(
                initTokens,
                localTokens,
                r,
                topUnits,
                memoryTokens,
                contiguity,
                cachedBlocks,
                segmentation,
                lexicalUnits);
    }

    /** The first layer boundary refinement reads: -1 chooses the last 3/8 of the layers, as EM-LLM's Mistral setting (20 of 32). */
    public static int refineFrom(int refineFromLayer, int layers) {
        return refineFromLayer < 0 ? layers * 5 / 8 : Math.min(refineFromLayer, layers - 1);
    }
}
