package io.engram.engine.memory.retrieval;

import java.util.Arrays;

/**
 * Units by score, drawn best first: a binary heap on (score descending, unit ascending) in primitive arrays, so a
 * ranking that scores thousands of units allocates nothing per unit.
 */
final class ScoreHeap {
    private double[] score;
    private int[] unit;
    private int size;

    ScoreHeap(int capacity) {
        score = new double[Math.max(1, capacity)];
        unit = new int[score.length];
    }

    /** Every unit {@code 0..scores.length) at its score, heapified in linear time. */
    static ScoreHeap of(double[] scores) {
        ScoreHeap h = new ScoreHeap(scores.length);
        System.arraycopy(scores, 0, h.score, 0, scores.length);
        for (int i = 0; i < scores.length; i++) {
            h.unit[i] = i;
        }
        h.size = scores.length;
        h.heapify();
        return h;
    }

    int size() {
        return size;
    }

    /** Adds a unit without restoring the heap order: {@link #heapify} before the next {@link #pop}. */
    void append(double s, int u) {
        if (size == score.length) {
            score = Arrays.copyOf(score, size * 2);
            unit = Arrays.copyOf(unit, size * 2);
        }
        score[size] = s;
        unit[size++] = u;
    }

    /** Restores the heap order after {@link #append}s, in time linear in the size. */
    void heapify() {
        for (int i = size / 2 - 1; i >= 0; i--) {
            down(i);
        }
    }

    /** Removes and returns the best unit. */
    int pop() {
        int top = unit[0];
        size--;
        if (size > 0) {
            score[0] = score[size];
            unit[0] = unit[size];
            down(0);
        }
        return top;
    }

    private boolean above(int a, int b) {
        return score[a] > score[b] || (score[a] == score[b] && unit[a] < unit[b]);
    }

    private void down(int i) {
        while (true) {
            int l = 2 * i + 1;
            int best = i;
            if (l < size && above(l, best)) {
                best = l;
            }
            if (l + 1 < size && above(l + 1, best)) {
                best = l + 1;
            }
            if (best == i) {
                return;
            }
            swap(i, best);
            i = best;
        }
    }

    private void swap(int a, int b) {
        double ts = score[a];
        score[a] = score[b];
        score[b] = ts;
        int tu = unit[a];
        unit[a] = unit[b];
        unit[b] = tu;
    }
}
