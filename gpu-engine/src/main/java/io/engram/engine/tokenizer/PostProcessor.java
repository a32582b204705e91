package io.engram.engine.tokenizer;

import java.util.List;

/**
 * A {@code tokenizer.json} post-processor, applied by {@code encode(text, true)}: adds the special tokens around a
 * single sequence. Pair templates are not needed by the engine and are not read.
 */
sealed interface PostProcessor {

    int[] apply(int[] ids);

    /** {@code TemplateProcessing}'s {@code single} template: a list of fixed id runs and the sequence slot. */
    record Template(List<int[]> pieces) implements PostProcessor {
        /** Marks the sequence slot in {@link #pieces}. */
        static final int[] SEQUENCE = new int[0];

        @Override
        public int[] apply(int[] ids) {
            IntList out = new IntList(ids.length + 4);
            for (int[] piece : pieces) {
                out.addAll(piece == SEQUENCE ? ids : piece);
            }
            return out.toArray();
        }
    }

    /** Changes no ids ({@code ByteLevel}, which only trims offsets). */
    record Identity() implements PostProcessor {
        @Override
        public int[] apply(int[] ids) {
            return ids;
        }
    }

    /** Applies processors in order. */
    record Sequence(List<PostProcessor> steps) implements PostProcessor {
        @Override
        public int[] apply(int[] ids) {
            int[] out = ids;
            for (PostProcessor p : steps) {
                out = p.apply(out);
            }
            return out;
        }
    }
}
