package io.engram.engine.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A {@code tokenizer.json} pre-tokenizer: cuts a normalized segment into the pieces the model encodes one by one.
 * Mirrors Hugging Face {@code tokenizers}; each variant documents the reference behaviour it reproduces.
 */
sealed interface PreTokenizer {

    /**
     * A piece of text with whether it starts at the very beginning of the input (used by {@code Metaspace}'s
     * {@code prepend_scheme: "first"}).
     */
    record Piece(String text, boolean atStart) {}

    /** Splits every piece of {@code in} and returns the new list. */
    List<Piece> apply(List<Piece> in);

    /** GPT-2's pre-tokenization pattern, used by {@code ByteLevel} with {@code use_regex: true}. */
    Pattern GPT2_PATTERN =
            HfRegex.compile("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");

    /**
     * Byte-level: optional prefix space, optional GPT-2 regex split, then every piece is mapped to GPT-2's byte
     * alphabet ({@link ByteLevelAlphabet}).
     */
    record ByteLevel(boolean addPrefixSpace, boolean useRegex) implements PreTokenizer {
        @Override
        public List<Piece> apply(List<Piece> in) {
            List<Piece> out = new ArrayList<>(in.size() * 2);
            List<Piece> split = new ArrayList<>();
            for (Piece p : in) {
                Piece q = p;
                if (addPrefixSpace && !p.text().startsWith(" ")) {
                    q = new Piece(" " + p.text(), p.atStart());
                }
                split.clear();
                if (useRegex) {
                    SplitBehavior.ISOLATED.apply(q, regexTiles(GPT2_PATTERN, q.text()), split);
                } else {
                    split.add(q);
                }
                for (Piece s : split) {
                    out.add(new Piece(ByteLevelAlphabet.encode(s.text()), s.atStart()));
                }
            }
            return out;
        }
    }

    /** Splits on a regex or literal pattern with a {@link SplitBehavior}; {@code invert} swaps matches and gaps. */
    record Split(Pattern pattern, SplitBehavior behavior, boolean invert) implements PreTokenizer {
        @Override
        public List<Piece> apply(List<Piece> in) {
            List<Piece> out = new ArrayList<>(in.size() * 4);
            for (Piece p : in) {
                List<int[]> tiles = regexTiles(pattern, p.text());
                if (invert) {
                    for (int[] t : tiles) {
                        t[2] = 1 - t[2];
                    }
                }
                behavior.apply(p, tiles, out);
            }
            return out;
        }
    }

    /**
     * Splits numbers (Unicode categories Nd, Nl, No, like Rust's {@code char::is_numeric}) from the rest: each digit
     * alone when {@code individualDigits}, else runs of digits.
     */
    record Digits(boolean individualDigits) implements PreTokenizer {
        @Override
        public List<Piece> apply(List<Piece> in) {
            List<Piece> out = new ArrayList<>(in.size() * 2);
            SplitBehavior behavior = individualDigits ? SplitBehavior.ISOLATED : SplitBehavior.CONTIGUOUS;
            for (Piece p : in) {
                behavior.apply(p, charTiles(p.text()), out);
            }
            return out;
        }

        private static List<int[]> charTiles(String text) {
            List<int[]> tiles = new ArrayList<>();
            int last = 0;
            for (int i = 0; i < text.length(); ) {
                int cp = text.codePointAt(i);
                int n = Character.charCount(cp);
                if (isNumeric(cp)) {
                    if (last < i) {
                        tiles.add(new int[] {last, i, 0});
                    }
                    tiles.add(new int[] {i, i + n, 1});
                    last = i + n;
                }
                i += n;
            }
            if (last < text.length()) {
                tiles.add(new int[] {last, text.length(), 0});
            }
            return tiles;
        }

        private static boolean isNumeric(int cp) {
            int type = Character.getType(cp);
            return type == Character.DECIMAL_DIGIT_NUMBER
                    || type == Character.LETTER_NUMBER
                    || type == Character.OTHER_NUMBER;
        }
    }

    /** How {@link Metaspace} adds its replacement character in front of a piece. */
    enum PrependScheme {
        ALWAYS,
        FIRST,
        NEVER
    }

    /**
     * SentencePiece-style: spaces become {@code replacement}, a replacement is prepended per the scheme (when the
     * piece does not start with one already), and with {@code split} pieces are cut before each replacement.
     */
    record Metaspace(char replacement, PrependScheme prependScheme, boolean split) implements PreTokenizer {
        @Override
        public List<Piece> apply(List<Piece> in) {
            List<Piece> out = new ArrayList<>(in.size() * 4);
            String rep = String.valueOf(replacement);
            for (Piece p : in) {
                String text = p.text().replace(" ", rep);
                boolean prepend = switch (prependScheme) {
                    case ALWAYS -> true;
                    case FIRST -> p.atStart();
                    case NEVER -> false;
                };
                if (prepend && !text.startsWith(rep)) {
                    text = rep + text;
                }
                Piece q = new Piece(text, p.atStart());
                if (split) {
                    List<int[]> tiles = new ArrayList<>();
                    int last = 0;
                    for (int i = 0; i < text.length(); i++) {
                        if (text.charAt(i) == replacement) {
                            if (last < i) {
                                tiles.add(new int[] {last, i, 0});
                            }
                            tiles.add(new int[] {i, i + 1, 1});
                            last = i + 1;
                        }
                    }
                    if (last < text.length()) {
                        tiles.add(new int[] {last, text.length(), 0});
                    }
                    SplitBehavior.MERGED_WITH_NEXT.apply(q, tiles, out);
                } else if (!text.isEmpty()) {
                    out.add(q);
                }
            }
            return out;
        }
    }

    /** Applies pre-tokenizers in order, each to every piece the previous one produced. */
    record Sequence(List<PreTokenizer> steps) implements PreTokenizer {
        @Override
        public List<Piece> apply(List<Piece> in) {
            List<Piece> out = in;
            for (PreTokenizer step : steps) {
                out = step.apply(out);
            }
            return out;
        }
    }

    /**
     * Tiles {@code text} into {@code (start, end, isMatch)} triples from the pattern's successive matches, as
     * {@code tokenizers}' {@code Pattern::find_matches} does for regexes.
     */
    static List<int[]> regexTiles(Pattern pattern, String text) {
        List<int[]> tiles = new ArrayList<>();
        Matcher m = pattern.matcher(text);
        int prev = 0;
        while (m.find()) {
            if (prev != m.start()) {
                tiles.add(new int[] {prev, m.start(), 0});
            }
            tiles.add(new int[] {m.start(), m.end(), 1});
            prev = m.end();
        }
        if (prev != text.length()) {
            tiles.add(new int[] {prev, text.length(), 0});
        }
        return tiles;
    }
}
