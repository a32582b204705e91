package io.engram.engine.tokenizer.chat;

/** The few Python {@code str} methods that chat templates call, with Python's exact semantics. */
final class PythonStrings {

    private PythonStrings() {}

    /** Python {@code str.isspace()} for one character (whitespace by Unicode bidi class and Zs). */
    static boolean isSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D)
                || (cp >= 0x1C && cp <= 0x20)
                || cp == 0x85
                || cp == 0xA0
                || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A)
                || cp == 0x2028
                || cp == 0x2029
                || cp == 0x202F
                || cp == 0x205F
                || cp == 0x3000;
    }

    /** {@code s.strip()}: Python whitespace on both sides (Jinja's {@code trim} filter). */
    static String strip(String s) {
        int start = 0;
        int end = s.length();
        while (start < end && isSpace(s.charAt(start))) {
            start++;
        }
        while (end > start && isSpace(s.charAt(end - 1))) {
            end--;
        }
        return s.substring(start, end);
    }

    /** {@code s.lstrip(chars)} for a single character. */
    static String lstrip(String s, char c) {
        int start = 0;
        while (start < s.length() && s.charAt(start) == c) {
            start++;
        }
        return s.substring(start);
    }

    /** {@code s.rstrip(chars)} for a single character. */
    static String rstrip(String s, char c) {
        int end = s.length();
        while (end > 0 && s.charAt(end - 1) == c) {
            end--;
        }
        return s.substring(0, end);
    }

    /** {@code s.strip(chars)} for a single character. */
    static String strip(String s, char c) {
        return rstrip(lstrip(s, c), c);
    }

    /** {@code s.split(sep)[0]}. */
    static String firstPart(String s, String sep) {
        int at = s.indexOf(sep);
        return at < 0 ? s : s.substring(0, at);
    }

    /** {@code s.split(sep)[-1]}. */
    static String lastPart(String s, String sep) {
        int at = s.lastIndexOf(sep);
        return at < 0 ? s : s.substring(at + sep.length());
    }
}
