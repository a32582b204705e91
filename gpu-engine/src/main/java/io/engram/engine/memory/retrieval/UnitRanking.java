package io.engram.engine.memory.retrieval;

/** Unit indices for one query, best first, drawn one at a time (a step usually needs only the first few). */
public interface UnitRanking {

    boolean hasNext();

    int next();

    /** Units whose score was computed so far. */
    long scored();

    /** Every unit scored, then drawn from a binary heap: descending score, ascending index on ties. */
    final class Exact implements UnitRanking {
        private final ScoreHeap heap;
        private final long scored;

        public Exact(double[] score) {
            this.heap = ScoreHeap.of(score);
            this.scored = score.length;
        }

        @Override
        public boolean hasNext() {
            return heap.size() > 0;
        }

        @Override
        public int next() {
            return heap.pop();
        }

        @Override
        public long scored() {
            return scored;
        }
    }
}
