package io.engram.engine.memory.retrieval;

import io.engram.engine.config.ModelConfig;
import io.engram.engine.config.ModelFormatException;
import io.engram.engine.safetensors.SafetensorsFile;
import io.engram.engine.tensor.DType;
import io.engram.engine.tensor.WeightTensor;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A learned matrix per layer and KV head that the retrieval memory applies to a step's grouped query before it ranks
 * units: the score of a unit is {@code (M q) . r} instead of {@code q . r}. Learned with the model frozen ({@code
 * training/engram_train/rank_adapter.py}), so the model's answers at native context are unchanged and only which units
 * a layer retrieves moves. Read from {@value #FILE} beside the model: tensors {@code layers.N.query} of shape {@code
 * [kvHeads * headDim, headDim]} in F32 (row {@code g * headDim + i} gives KV head {@code g}'s output element {@code i}), metadata {@code
 * local_tokens}: the window whose rotation the training queries carried, and optionally {@code shared_selection_layer}:
 * a layer whose choice of units every later layer retrieves too (instead of ranking per layer; see {@link #sharedFrom}).
 */
public final class RankingProjection {

    public static final String FILE = "ranking.safetensors";

    private static final Logger LOG = LoggerFactory.getLogger(RankingProjection.class);
    private static final AtomicBoolean WARNED = new AtomicBoolean();

    private final float[][] matrices; // [layer][g * D * D + i * D + j]
    private final int kvHeads;
    private final int headDim;
    private final int localTokens;
    private final int sharedFrom;

    RankingProjection(float[][] matrices, int kvHeads, int headDim, int localTokens, int sharedFrom) {
        this.matrices = matrices;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.localTokens = localTokens;
        this.sharedFrom = sharedFrom;
    }

    /** The projection next to a model folder, or null when the folder has none. */
    public static RankingProjection besideModel(Path modelDir, ModelConfig model) {
        if (modelDir == null) {
            return null;
        }
        Path dir = Files.isDirectory(modelDir)
                ? modelDir
                : modelDir.toAbsolutePath().getParent();
        Path file = dir == null ? null : dir.resolve(FILE);
        return file != null && Files.isRegularFile(file) ? read(file, model) : null;
    }

    /**
     * The projection beside the model when it was trained for a window of {@code localTokens} (its queries are rotated
     * to that distance); null when the folder has none or it was trained for another window (said once in the log).
     */
    public static RankingProjection forWindow(Path modelDir, ModelConfig model, int localTokens) {
        RankingProjection p = besideModel(modelDir, model);
        if (p != null && p.localTokens != localTokens) {
            if (WARNED.compareAndSet(false, true)) {
                LOG.info(
                        "{} beside the model was trained for a local window of {} tokens, this memory has {}: units "
                                + "are ranked by the raw query",
                        FILE,
                        p.localTokens,
                        localTokens);
            }
            return null;
        }
        return p;
    }

    /** The retrieval memory of {@code settings}, ranking through the projection beside the model when {@code on}. */
    public static RetrievalMemory policy(RetrievalSettings settings, ModelConfig model, Path modelDir, boolean on) {
        return RetrievalMemory.of(settings, model, on ? forWindow(modelDir, model, settings.localTokens()) : null);
    }

    /** Reads and checks {@code file} against the model's shape. @throws ModelFormatException naming what is wrong */
    public static RankingProjection read(Path file, ModelConfig model) {
        int d = model.headDim();
        int g = model.kvHeads();
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            String local = st.metadata().get("local_tokens");
            if (local == null || !local.matches("\\d{1,9}")) {
                throw new ModelFormatException(file, "metadata local_tokens missing or not a number: " + local);
            }
            if (st.tensors().size() != model.layers()) {
                throw new ModelFormatException(
                        file,
                        "holds %d tensors, the model has %d layers (one layers.N.query per layer)"
                                .formatted(st.tensors().size(), model.layers()));
            }
            float[][] m = new float[model.layers()][];
            for (int l = 0; l < model.layers(); l++) {
                WeightTensor t = st.tensors().get("layers." + l + ".query");
                if (t == null) {
                    throw new ModelFormatException(file, "tensor layers." + l + ".query is missing");
                }
                if (t.dtype() != DType.F32 || !Arrays.equals(t.shape(), new long[] {(long) g * d, d})) {
                    throw new ModelFormatException(
                            file,
                            "tensor layers.%d.query is %s %s, expected F32 [%d, %d] (kv heads x head dim, head dim)"
                                    .formatted(l, t.dtype(), Arrays.toString(t.shape()), g * d, d));
                }
                m[l] = t.data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
                for (float v : m[l]) {
                    if (!Float.isFinite(v)) {
                        throw new ModelFormatException(file, "tensor layers." + l + ".query holds " + v);
                    }
                }
            }
            String shared = st.metadata().getOrDefault("shared_selection_layer", "-1");
            if (!shared.matches("-1|\\d{1,4}") || Integer.parseInt(shared) >= model.layers()) {
                throw new ModelFormatException(
                        file,
                        "metadata shared_selection_layer must be a layer below %d (or -1: per layer), got %s"
                                .formatted(model.layers(), shared));
            }
            return new RankingProjection(m, g, d, Integer.parseInt(local), Integer.parseInt(shared));
        }
    }

    /** The window whose query rotation the projection was trained with. */
    public int localTokens() {
        return localTokens;
    }

    /**
     * The layer whose retrieved units every later layer retrieves too, in each step; -1 when each layer ranks units
     * itself. One choice for all layers serves a model whose answer needs a unit in several layers at once: with
     * engram-tiny at 12-36K tokens the answer's unit was among layer 0's top 2 in 0.43 of held-out probes but among every
     * layer's own top 2 in 0.05 (training/PROBES.md).
     */
    public int sharedFrom() {
        return sharedFrom;
    }

    /** {@code grouped} ({@code kvHeads * headDim}, per KV head) projected for ranking in {@code layer}. */
    float[] apply(int layer, float[] grouped) {
        float[] m = matrices[layer];
        float[] out = new float[grouped.length];
        for (int g = 0; g < kvHeads; g++) {
            int base = g * headDim;
            for (int i = 0; i < headDim; i++) {
                int row = (g * headDim + i) * headDim;
                double s = 0;
                for (int j = 0; j < headDim; j++) {
                    s += (double) m[row + j] * grouped[base + j];
                }
                out[base + i] = (float) s;
            }
        }
        return out;
    }
}
