package io.engram.engine.tokenizer;

import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Compiles the Oniguruma regexes found in {@code tokenizer.json} with {@code java.util.regex} so that they match the
 * same text.
 *
 * <p>The patterns in use (GPT-2, Llama-3, Qwen2, ...) need no rewriting: both engines are backtracking, try
 * alternatives left to right, and support {@code \p{L}}, {@code \p{N}}, lookahead and {@code (?i:...)}. What differs
 * is the defaults: Oniguruma's {@code \s}, {@code \d}, {@code \w} and case folding are Unicode-aware, so we compile
 * with {@link Pattern#UNICODE_CHARACTER_CLASS} (which implies {@link Pattern#UNICODE_CASE}); {@code \s} is then the
 * Unicode White_Space set, as in Oniguruma. Constructs whose meaning differs between the engines are refused.
 */
final class HfRegex {

    private HfRegex() {}

    /** Compiles an Oniguruma pattern, refusing constructs that would silently mean something else in Java. */
    static Pattern compile(String onigPattern) {
        // \h is a hex digit in Oniguruma but horizontal whitespace in Java; \K, \G and \R differ as well.
        for (String bad : new String[] {"\\h", "\\H", "\\K", "\\G", "\\R", "\\X", "(?~"}) {
            if (containsEscape(onigPattern, bad)) {
                throw new IllegalArgumentException("regex construct '%s' has no identical java.util.regex meaning: %s"
                        .formatted(bad, onigPattern));
            }
        }
        try {
            return Pattern.compile(onigPattern, Pattern.UNICODE_CHARACTER_CLASS);
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException("regex does not compile: " + e.getMessage(), e);
        }
    }

    /** Compiles a literal string pattern. */
    static Pattern literal(String text) {
        return Pattern.compile(Pattern.quote(text));
    }

    private static boolean containsEscape(String pattern, String escape) {
        for (int i = 0; i < pattern.length(); i++) {
            if (pattern.charAt(i) == '\\') {
                if (pattern.startsWith(escape, i)) {
                    return true;
                }
                i++; // skip the escaped character
            } else if (escape.charAt(0) != '\\' && pattern.startsWith(escape, i)) {
                return true;
            }
        }
        return false;
    }
}
