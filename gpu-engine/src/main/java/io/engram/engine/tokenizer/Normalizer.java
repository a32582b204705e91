package io.engram.engine.tokenizer;

import java.text.Normalizer.Form;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * A {@code tokenizer.json} normalizer: rewrites a text segment before pre-tokenization. Mirrors Hugging Face {@code
 * tokenizers}; offsets are not tracked because we only need ids.
 */
sealed interface Normalizer {

    String normalize(String text);

    /** Unicode normal forms (NFC, NFD, NFKC, NFKD). */
    record UnicodeForm(Form form) implements Normalizer {
        @Override
        public String normalize(String text) {
            return java.text.Normalizer.normalize(text, form);
        }
    }

    /** Lowercases with Unicode default (locale-independent) rules. */
    record Lowercase() implements Normalizer {
        @Override
        public String normalize(String text) {
            return text.toLowerCase(Locale.ROOT);
        }
    }

    /** Prepends a fixed string to every non-empty segment (SentencePiece's dummy prefix {@code "▁"}). */
    record Prepend(String prefix) implements Normalizer {
        @Override
        public String normalize(String text) {
            return text.isEmpty() ? text : prefix + text;
        }
    }

    /** Replaces every match of a literal or regex pattern. */
    record Replace(Pattern pattern, String content) implements Normalizer {
        @Override
        public String normalize(String text) {
            return pattern.matcher(text).replaceAll(java.util.regex.Matcher.quoteReplacement(content));
        }
    }

    /** Strips Unicode whitespace ({@code char::is_whitespace}) on the chosen sides. */
    record Strip(boolean left, boolean right) implements Normalizer {
        @Override
        public String normalize(String text) {
            int start = 0;
            int end = text.length();
            while (left && start < end && Unicode.isWhiteSpace(text.codePointAt(start))) {
                start += Character.charCount(text.codePointAt(start));
            }
            while (right && end > start && Unicode.isWhiteSpace(text.codePointBefore(end))) {
                end -= Character.charCount(text.codePointBefore(end));
            }
            return text.substring(start, end);
        }
    }

    /** Applies normalizers in order. */
    record Sequence(List<Normalizer> normalizers) implements Normalizer {
        @Override
        public String normalize(String text) {
            String out = text;
            for (Normalizer n : normalizers) {
                out = n.normalize(out);
            }
            return out;
        }
    }
}
