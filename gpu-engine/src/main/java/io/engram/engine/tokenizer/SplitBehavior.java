package io.engram.engine.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * What a splitting pre-tokenizer does with the pattern matches it finds ({@code SplitDelimiterBehavior} in Hugging
 * Face {@code tokenizers}). Empty pieces are always dropped.
 */
enum SplitBehavior {
    REMOVED,
    ISOLATED,
    MERGED_WITH_PREVIOUS,
    MERGED_WITH_NEXT,
    CONTIGUOUS;

    /** Parses the JSON spelling ({@code "Isolated"}, {@code "MergedWithNext"}, ...). */
    static SplitBehavior fromJson(String source, String value) {
        return switch (value) {
            case "Removed" -> REMOVED;
            case "Isolated" -> ISOLATED;
            case "MergedWithPrevious" -> MERGED_WITH_PREVIOUS;
            case "MergedWithNext" -> MERGED_WITH_NEXT;
            case "Contiguous" -> CONTIGUOUS;
            default ->
                throw new UnsupportedTokenizerException(
                        source,
                        "split behavior",
                        value,
                        "Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
        };
    }

    /**
     * Splits {@code text} given the pattern's pieces, a list of {@code (start, end, isMatch)} triples that tile the
     * text in order, and appends the non-empty results to {@code out}.
     */
    void apply(PreTokenizer.Piece piece, List<int[]> tiles, List<PreTokenizer.Piece> out) {
        String text = piece.text();
        List<int[]> spans = new ArrayList<>(tiles.size());
        switch (this) {
            case REMOVED -> {
                for (int[] t : tiles) {
                    if (t[2] == 0) {
                        spans.add(new int[] {t[0], t[1]});
                    }
                }
            }
            case ISOLATED -> {
                for (int[] t : tiles) {
                    spans.add(new int[] {t[0], t[1]});
                }
            }
            case MERGED_WITH_PREVIOUS -> {
                boolean previousMatch = false;
                for (int[] t : tiles) {
                    boolean match = t[2] != 0;
                    if (match && !previousMatch && !spans.isEmpty()) {
                        spans.getLast()[1] = t[1];
                    } else {
                        spans.add(new int[] {t[0], t[1]});
                    }
                    previousMatch = match;
                }
            }
            case MERGED_WITH_NEXT -> {
                boolean previousMatch = false;
                for (int i = tiles.size() - 1; i >= 0; i--) {
                    int[] t = tiles.get(i);
                    boolean match = t[2] != 0;
                    if (match && !previousMatch && !spans.isEmpty()) {
                        spans.getLast()[0] = t[0];
                    } else {
                        spans.add(new int[] {t[0], t[1]});
                    }
                    previousMatch = match;
                }
                java.util.Collections.reverse(spans);
            }
            case CONTIGUOUS -> {
                boolean previousMatch = false;
                for (int[] t : tiles) {
                    boolean match = t[2] != 0;
                    if (match == previousMatch && !spans.isEmpty()) {
                        spans.getLast()[1] = t[1];
                    } else {
                        spans.add(new int[] {t[0], t[1]});
                    }
                    previousMatch = match;
                }
            }
        }
        for (int[] s : spans) {
            if (s[1] > s[0]) {
                out.add(new PreTokenizer.Piece(text.substring(s[0], s[1]), piece.atStart() && s[0] == 0));
            }
        }
    }
}
