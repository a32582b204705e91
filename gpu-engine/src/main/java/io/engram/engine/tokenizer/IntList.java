package io.engram.engine.tokenizer;

import java.util.Arrays;

/** A growable {@code int} array for token ids on the encode path (no boxing). Not thread-safe. */
final class IntList {

    private int[] data;
    private int size;

    IntList(int capacity) {
        data = new int[Math.max(4, capacity)];
    }

    void add(int value) {
        if (size == data.length) {
            data = Arrays.copyOf(data, data.length * 2);
        }
        data[size++] = value;
    }

    void addAll(int[] values) {
        if (size + values.length > data.length) {
            data = Arrays.copyOf(data, Math.max(data.length * 2, size + values.length));
        }
        System.arraycopy(values, 0, data, size, values.length);
        size += values.length;
    }

    int size() {
        return size;
    }

    int get(int index) {
        return data[index];
    }

    int[] toArray() {
        return Arrays.copyOf(data, size);
    }
}
