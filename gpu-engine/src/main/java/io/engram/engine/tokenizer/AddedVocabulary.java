package io.engram.engine.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Finds added tokens in text, as Hugging Face {@code tokenizers}' {@code AddedVocabulary} does: leftmost-longest
 * matching over all contents, then {@code single_word} filtering and {@code lstrip}/{@code rstrip} widening. Tokens
 * with {@code normalized: false} are matched in the raw text, the others in each normalized segment. Immutable.
 */
final class AddedVocabulary {

    /** A segment of text: either plain text (token {@code -1}) or an added token's id. */
    record Segment(String text, int token, int start) {
        boolean isToken() {
            return token >= 0;
        }
    }

    private static final java.util.regex.Pattern WORD_CHAR =
            java.util.regex.Pattern.compile("\\w", java.util.regex.Pattern.UNICODE_CHARACTER_CLASS);

    private final Matcher raw;
    private final Matcher normalized;

    AddedVocabulary(List<AddedToken> tokens, Normalizer normalizer) {
        List<AddedToken> rawTokens = new ArrayList<>();
        List<AddedToken> normTokens = new ArrayList<>();
        List<String> normContents = new ArrayList<>();
        for (AddedToken t : tokens) {
            if (t.normalized() && normalizer != null) {
                normTokens.add(t);
                normContents.add(normalizer.normalize(t.content()));
            } else {
                rawTokens.add(t);
            }
        }
        raw = new Matcher(rawTokens, rawTokens.stream().map(AddedToken::content).toList());
        normalized = new Matcher(normTokens, normContents);
    }

    /** Splits raw text on the tokens matched before normalization. */
    List<Segment> splitRaw(String text) {
        return raw.split(text);
    }

    /** Splits a normalized segment on the tokens matched after normalization. */
    List<Segment> splitNormalized(String text) {
        return normalized.split(text);
    }

    boolean hasNormalizedTokens() {
        return !normalized.isEmpty();
    }

    /** Leftmost-longest matcher over a fixed set of strings, indexed by first char. */
    private static final class Matcher {
        private final Map<Character, List<Integer>> byFirstChar = new HashMap<>(); // indices sorted longest first
        private final List<AddedToken> tokens;
        private final List<String> contents;

        Matcher(List<AddedToken> tokens, List<String> contents) {
            this.tokens = tokens;
            this.contents = contents;
            for (int i = 0; i < contents.size(); i++) {
                if (!contents.get(i).isEmpty()) {
                    byFirstChar
                            .computeIfAbsent(contents.get(i).charAt(0), k -> new ArrayList<>())
                            .add(i);
                }
            }
            for (List<Integer> list : byFirstChar.values()) {
                list.sort((a, b) -> Integer.compare(
                        contents.get(b).length(), contents.get(a).length()));
            }
        }

        boolean isEmpty() {
            return byFirstChar.isEmpty();
        }

        List<Segment> split(String text) {
            List<Segment> out = new ArrayList<>();
            if (byFirstChar.isEmpty()) {
                out.add(new Segment(text, -1, 0));
                return out;
            }
            int startOffset = 0;
            int i = 0;
            while (i < text.length()) {
                List<Integer> candidates = byFirstChar.get(text.charAt(i));
                int found = -1;
                if (candidates != null) {
                    for (int c : candidates) {
                        if (text.startsWith(contents.get(c), i)) {
                            found = c;
                            break;
                        }
                    }
                }
                if (found < 0) {
                    i++;
                    continue;
                }
                AddedToken token = tokens.get(found);
                int start = i;
                int stop = i + contents.get(found).length();
                i = stop;
                if (token.singleWord()) {
                    boolean startSpace = start == 0 || !isWordChar(text.codePointBefore(start));
                    boolean stopSpace = stop == text.length() || !isWordChar(text.codePointAt(stop));
                    if (!startSpace || !stopSpace) {
                        continue;
                    }
                }
                if (token.lstrip()) {
                    int s = start;
                    while (s > 0 && Unicode.isWhiteSpace(text.codePointBefore(s))) {
                        s -= Character.charCount(text.codePointBefore(s));
                    }
                    start = Math.max(s, startOffset);
                }
                if (token.rstrip()) {
                    while (stop < text.length() && Unicode.isWhiteSpace(text.codePointAt(stop))) {
                        stop += Character.charCount(text.codePointAt(stop));
                    }
                    i = stop;
                }
                if (startOffset < start) {
                    out.add(new Segment(text.substring(startOffset, start), -1, startOffset));
                }
                out.add(new Segment(text.substring(start, stop), token.id(), start));
                startOffset = stop;
            }
            if (startOffset < text.length()) {
                out.add(new Segment(text.substring(startOffset), -1, startOffset));
            }
            return out;
        }

        /** Unicode {@code \w} (letters, marks, digits, connector punctuation, joiners), as the reference uses. */
        private static boolean isWordChar(int cp) {
            return WORD_CHAR.matcher(Character.toString(cp)).matches();
        }
    }
}
