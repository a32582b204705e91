package io.engram.engine.kv;

/**
 * K or V rows of a block layer ({@code len} tokens of {@code kvDim} values, KV heads side by side) without the heads a
 * mask drops ({@link KvBlock#droppedHeads}), and back: what stores keep of a block whose streaming heads were dropped.
 */
public final class HeadRows {
    private HeadRows() {}

    /** Values per token kept when the heads in {@code dropped} (of {@code heads}) are left out. */
    public static int keptDim(int kvDim, int heads, long dropped) {
        return dropped == 0 ? kvDim : kvDim - Long.bitCount(dropped) * (kvDim / heads);
    }

    /** The rows of the heads not in {@code dropped}, token by token; {@code rows} itself when none is dropped. */
    public static float[] keep(float[] rows, int len, int kvDim, int heads, long dropped) {
        if (dropped == 0) {
            return rows;
        }
        int headDim = kvDim / heads;
        float[] out = new float[len * keptDim(kvDim, heads, dropped)];
        int o = 0;
        for (int t = 0; t < len; t++) {
            for (int h = 0; h < heads; h++) {
                if ((dropped >>> h & 1) == 0) {
                    System.arraycopy(rows, t * kvDim + h * headDim, out, o, headDim);
                    o += headDim;
                }
            }
        }
        return out;
    }

    /** Spreads kept rows ({@link #keep}) back into {@code rows} ({@code len * kvDim}), zeros where a head was dropped. */
    public static void spread(float[] kept, float[] rows, int len, int kvDim, int heads, long dropped) {
        if (dropped == 0) {
            System.arraycopy(kept, 0, rows, 0, len * kvDim);
            return;
        }
        int headDim = kvDim / heads;
        int k = 0;
        for (int t = 0; t < len; t++) {
            for (int h = 0; h < heads; h++) {
                int at = t * kvDim + h * headDim;
                if ((dropped >>> h & 1) == 0) {
                    System.arraycopy(kept, k, rows, at, headDim);
                    k += headDim;
                } else {
                    java.util.Arrays.fill(rows, at, at + headDim, 0f);
                }
            }
        }
    }
}
