package io.engram.engine.memory.duo;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Which KV heads are retrieval heads (full memory) and which are streaming heads (sinks + recent window), from a
 * score per (layer, KV head): DuoAttention's gate values or a retrieval score from {@link io.engram.engine.calibration.HeadCalibration}. The file
 * format is DuoAttention's {@code full_attention_heads.tsv}: one line per layer, tab-separated floats, one per KV head.
 */
public final class HeadPattern {
    /** The file name next to a model that run-time configuration looks for. */
    public static final String FILE_NAME = "duo-heads.tsv";

    /** Where a model's pattern file sits: {@value #FILE_NAME} in its folder, or beside its GGUF file. */
    public static java.nio.file.Path besideModel(java.nio.file.Path model) {
        java.nio.file.Path dir = java.nio.file.Files.isDirectory(model)
                ? model
                : model.toAbsolutePath().getParent();
        return dir.resolve(FILE_NAME);
    }

    private final float[][] scores;
    private final boolean[][] retrieval;

    private HeadPattern(float[][] scores, boolean[][] retrieval) {
        this.scores = scores;
        this.retrieval = retrieval;
    }

    /**
     * Binarizes by sparsity, as DuoAttention deploys: the {@code sparsity} share of heads with the lowest scores become
     * streaming heads (ties: the later head), the rest retrieval heads. 0 keeps every head full, 1 none.
     */
    public static HeadPattern bySparsity(float[][] scores, double sparsity) {
        if (!(sparsity >= 0 && sparsity <= 1)) {
            throw new IllegalArgumentException("sparsity must be in [0, 1], got " + sparsity);
        }
        int layers = scores.length;
        int kv = scores[0].length;
        int total = layers * kv;
        Integer[] order = new Integer[total];
        for (int i = 0; i < total; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> {
            int c = Float.compare(scores[b / kv][b % kv], scores[a / kv][a % kv]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        int full = total - (int) Math.round(sparsity * total);
        boolean[][] r = new boolean[layers][kv];
        for (int i = 0; i < full; i++) {
            r[order[i] / kv][order[i] % kv] = true;
        }
        return new HeadPattern(copy(scores), r);
    }

    /** Binarizes by threshold: a head is a retrieval head iff its score is at least {@code threshold}. */
    public static HeadPattern byThreshold(float[][] scores, double threshold) {
        boolean[][] r = new boolean[scores.length][scores[0].length];
        for (int l = 0; l < scores.length; l++) {
            for (int g = 0; g < scores[l].length; g++) {
                r[l][g] = scores[l][g] >= threshold;
            }
        }
        return new HeadPattern(copy(scores), r);
    }

    /** Reads a score file and checks its shape against the model's. */
    public static float[][] read(Path file, int layers, int kvHeads) {
        List<float[]> rows = new ArrayList<>();
        try {
            int lineNo = 0;
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                lineNo++;
                String t = line.strip();
                if (t.isEmpty() || t.startsWith("#")) {
                    continue;
                }
                String[] cells = t.split("\\s+");
                if (cells.length != kvHeads) {
                    throw new IllegalArgumentException("%s line %d has %d scores; the model has %d KV heads per layer"
                            .formatted(file, lineNo, cells.length, kvHeads));
                }
                float[] row = new float[kvHeads];
                for (int g = 0; g < kvHeads; g++) {
                    try {
                        row[g] = Math.clamp(Float.parseFloat(cells[g]), 0f, 1f);
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException(
                                "%s line %d: '%s' is not a number".formatted(file, lineNo, cells[g]));
                    }
                }
                rows.add(row);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read head pattern " + file, e);
        }
        if (rows.size() != layers) {
            throw new IllegalArgumentException(
                    "%s has %d layers of scores; the model has %d".formatted(file, rows.size(), layers));
        }
        return rows.toArray(new float[0][]);
    }

    /** Writes scores in the TSV format {@link #read} takes. */
    public static void write(Path file, float[][] scores) {
        StringBuilder sb = new StringBuilder();
        for (float[] row : scores) {
            for (int g = 0; g < row.length; g++) {
                sb.append(g == 0 ? "" : "\t").append(String.format(Locale.ROOT, "%.9e", row[g]));
            }
            sb.append('\n');
        }
        try {
            Files.writeString(file, sb.toString(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write head pattern " + file, e);
        }
    }

    public boolean isRetrieval(int layer, int kvHead) {
        return retrieval[layer][kvHead];
    }

    public int layers() {
        return retrieval.length;
    }

    public int kvHeads() {
        return retrieval[0].length;
    }

    /** Share of heads that are retrieval heads. */
    public double retrievalShare() {
        int n = 0;
        for (boolean[] row : retrieval) {
            for (boolean b : row) {
                n += b ? 1 : 0;
            }
        }
        return n / (double) (layers() * kvHeads());
    }

    public float score(int layer, int kvHead) {
        return scores[layer][kvHead];
    }

    private static float[][] copy(float[][] a) {
        float[][] out = new float[a.length][];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i].clone();
        }
        return out;
    }
}
