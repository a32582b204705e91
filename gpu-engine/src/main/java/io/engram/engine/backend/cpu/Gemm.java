package io.engram.engine.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The matrix product kernel of the CPU backend for quantized weights: {@code out[i * rows + r] = W[r] . x[i]} for a block of weight rows
 * (already decoded to floats) and every token, computed in register tiles of 4 rows x 4 tokens. Each weight vector
 * loaded serves four tokens and each activation vector four rows, where a dot product per (row, token) loads two vectors
 * per multiply-add: prefill becomes compute-bound instead of load-bound.
 *
 * <p>Every output has one accumulation order, whatever the tile it falls in (edge rows and tokens take the single-dot
 * path with the same order): one vector accumulator over the columns in steps of the vector length, its lanes summed
 * left to right, then the scalar tail. So a token's result does not depend on how many tokens share the call (prefill
 * chunking, decode) nor on which rows a thread got.
 */
final class Gemm {
    static final int ROWS = 4;
    private static final int TOKENS = 4;
    private static final VectorSpecies<Float> F = Simd.F;
    private static final int L = F.length();

    private Gemm() {}

    /**
     * Rows {@code [r, r + rb)} of the product ({@code rb <= ROWS}): {@code w[j * cols ..]} holds row {@code r + j}
     * decoded; {@code x} holds {@code n} tokens of {@code cols} floats; {@code out} is {@code n x rows}.
     */
    static void rows(float[] w, int rb, int cols, float[] x, int n, float[] out, int rows, int r) {
        int i = 0;
        if (rb == ROWS) {
            for (; i + TOKENS <= n; i += TOKENS) {
                tile4x4(w, cols, x, i, out, rows, r);
            }
        }
        for (; i < n; i++) {
            if (rb == ROWS) {
                tile4x1(w, cols, x, i, out, rows, r);
                continue;
            }
            for (int j = 0; j < rb; j++) {
                out[i * rows + r + j] = dot(w, j * cols, x, i * cols, cols);
            }
        }
    }

    /** Four rows for one token (decode): four independent accumulator chains instead of one. */
    private static void tile4x1(float[] w, int cols, float[] x, int i, float[] out, int rows, int r) {
        int x0 = i * cols;
        FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (; k <= cols - L; k += L) {
            FloatVector v = FloatVector.fromArray(F, x, x0 + k);
            a0 = FloatVector.fromArray(F, w, k).fma(v, a0);
            a1 = FloatVector.fromArray(F, w, cols + k).fma(v, a1);
            a2 = FloatVector.fromArray(F, w, 2 * cols + k).fma(v, a2);
            a3 = FloatVector.fromArray(F, w, 3 * cols + k).fma(v, a3);
        }
        boolean vec = cols >= L;
        out[i * rows + r] = finish(vec, a0, w, 0, x, x0, k, cols);
        out[i * rows + r + 1] = finish(vec, a1, w, cols, x, x0, k, cols);
        out[i * rows + r + 2] = finish(vec, a2, w, 2 * cols, x, x0, k, cols);
        out[i * rows + r + 3] = finish(vec, a3, w, 3 * cols, x, x0, k, cols);
    }

    /** One (row, token) output in the order every tile uses. */
    static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        int k = 0;
        float s = 0f;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(F);
            for (; k <= n - L; k += L) {
                acc = FloatVector.fromArray(F, a, aOff + k).fma(FloatVector.fromArray(F, b, bOff + k), acc);
            }
            s = Simd.sumLanes(acc);
        }
        for (; k < n; k++) {
            s += a[aOff + k] * b[bOff + k];
        }
        return s;
    }

    private static void tile4x4(float[] w, int cols, float[] x, int i, float[] out, int rows, int r) {
        int w0 = 0;
        int w1 = cols;
        int w2 = 2 * cols;
        int w3 = 3 * cols;
        int x0 = i * cols;
        int x1 = x0 + cols;
        int x2 = x1 + cols;
        int x3 = x2 + cols;
        FloatVector a00 = FloatVector.zero(F), a01 = a00, a02 = a00, a03 = a00;
        FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        int k = 0;
        for (; k <= cols - L; k += L) {
            FloatVector v0 = FloatVector.fromArray(F, x, x0 + k);
            FloatVector v1 = FloatVector.fromArray(F, x, x1 + k);
            FloatVector v2 = FloatVector.fromArray(F, x, x2 + k);
            FloatVector v3 = FloatVector.fromArray(F, x, x3 + k);
            FloatVector u = FloatVector.fromArray(F, w, w0 + k);
            a00 = u.fma(v0, a00);
            a01 = u.fma(v1, a01);
            a02 = u.fma(v2, a02);
            a03 = u.fma(v3, a03);
            u = FloatVector.fromArray(F, w, w1 + k);
            a10 = u.fma(v0, a10);
            a11 = u.fma(v1, a11);
            a12 = u.fma(v2, a12);
            a13 = u.fma(v3, a13);
            u = FloatVector.fromArray(F, w, w2 + k);
            a20 = u.fma(v0, a20);
            a21 = u.fma(v1, a21);
            a22 = u.fma(v2, a22);
            a23 = u.fma(v3, a23);
            u = FloatVector.fromArray(F, w, w3 + k);
            a30 = u.fma(v0, a30);
            a31 = u.fma(v1, a31);
            a32 = u.fma(v2, a32);
            a33 = u.fma(v3, a33);
        }
        boolean vec = cols >= L;
        store(
                out,
                rows,
                i,
                r,
                0,
                finish(vec, a00, w, w0, x, x0, k, cols),
                finish(vec, a01, w, w0, x, x1, k, cols),
                finish(vec, a02, w, w0, x, x2, k, cols),
                finish(vec, a03, w, w0, x, x3, k, cols));
        store(
                out,
                rows,
                i,
                r,
                1,
                finish(vec, a10, w, w1, x, x0, k, cols),
                finish(vec, a11, w, w1, x, x1, k, cols),
                finish(vec, a12, w, w1, x, x2, k, cols),
                finish(vec, a13, w, w1, x, x3, k, cols));
        store(
                out,
                rows,
                i,
                r,
                2,
                finish(vec, a20, w, w2, x, x0, k, cols),
                finish(vec, a21, w, w2, x, x1, k, cols),
                finish(vec, a22, w, w2, x, x2, k, cols),
                finish(vec, a23, w, w2, x, x3, k, cols));
        store(
                out,
                rows,
                i,
                r,
                3,
                finish(vec, a30, w, w3, x, x0, k, cols),
                finish(vec, a31, w, w3, x, x1, k, cols),
                finish(vec, a32, w, w3, x, x2, k, cols),
                finish(vec, a33, w, w3, x, x3, k, cols));
    }

    /** Lane sum (when the vector loop ran) and scalar tail from {@code k}: the same order as {@link #dot}. */
    private static float finish(
            boolean vec, FloatVector acc, float[] w, int wOff, float[] x, int xOff, int k, int cols) {
        float s = vec ? Simd.sumLanes(acc) : 0f;
        for (int j = k; j < cols; j++) {
            s += w[wOff + j] * x[xOff + j];
        }
        return s;
    }

    private static void store(float[] out, int rows, int i, int r, int j, float t0, float t1, float t2, float t3) {
        out[i * rows + r + j] = t0;
        out[(i + 1) * rows + r + j] = t1;
        out[(i + 2) * rows + r + j] = t2;
        out[(i + 3) * rows + r + j] = t3;
    }
}
