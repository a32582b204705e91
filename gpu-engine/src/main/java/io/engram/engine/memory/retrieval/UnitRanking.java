package io.engram.engine.memory.retrieval;

/** Unit indices for one query, best first, drawn one at a time (a step usually needs only the first few). */
public interface UnitRanking {

    boolean hasNext();

    int next();

    /** Units whose score was computed so far. */
    long scored();

    /** Every unit scored, then drawn from a binary heap: descending score, ascending index on ties. */
    final class Exact implements UnitRanking {
        private final double[] score;
        private final int[] heap;
        private int size;

        public Exact(double[] score) {
            this.score = score;
            this.heap = new int[score.length];
            for (int i = 0; i < score.length; i++) {
                heap[i] = i;
            }
            size = score.length;
            for (int i = size / 2 - 1; i >= 0; i--) {
                down(i);
            }
        }

        @Override
        public boolean hasNext() {
            return size > 0;
        }

        @Override
        public int next() {
            int top = heap[0];
            heap[0] = heap[--size];
            down(0);
            return top;
        }

        @Override
        public long scored() {
            return score.length;
        }

        private boolean before(int a, int b) {
            return score[a] > score[b] || (score[a] == score[b] && a < b);
        }

        private void down(int i) {
            while (true) {
                int l = 2 * i + 1;
                int r = l + 1;
                int best = i;
                if (l < size && before(heap[l], heap[best])) {
                    best = l;
                }
                if (r < size && before(heap[r], heap[best])) {
                    best = r;
                }
                if (best == i) {
                    return;
                }
                int t = heap[i];
                heap[i] = heap[best];
                heap[best] = t;
                i = best;
            }
        }
    }
}
