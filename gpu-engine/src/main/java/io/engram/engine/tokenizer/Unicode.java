package io.engram.engine.tokenizer;

import java.nio.charset.StandardCharsets;

/** Unicode details where Java's defaults differ from Rust's, which the reference tokenizers are written in. */
final class Unicode {

    private Unicode() {}

    /**
     * Rust's {@code char::is_whitespace}: the Unicode White_Space property. Unlike {@link
     * Character#isWhitespace(int)} this includes no-break spaces and excludes U+001C..U+001F.
     */
    static boolean isWhiteSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D)
                || cp == 0x20
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

    /**
     * Rust's {@code String::from_utf8_lossy}: each maximal ill-formed subsequence becomes one U+FFFD (the Unicode
     * "substitution of maximal subparts" practice).
     */
    static String decodeUtf8Lossy(byte[] bytes, int from, int to) {
        StringBuilder sb = new StringBuilder(to - from);
        int i = from;
        while (i < to) {
            int b0 = bytes[i] & 0xFF;
            if (b0 < 0x80) {
                sb.append((char) b0);
                i++;
                continue;
            }
            int need;
            int lo = 0x80;
            int hi = 0xBF;
            if (b0 >= 0xC2 && b0 <= 0xDF) {
                need = 1;
            } else if (b0 >= 0xE0 && b0 <= 0xEF) {
                need = 2;
                if (b0 == 0xE0) {
                    lo = 0xA0;
                } else if (b0 == 0xED) {
                    hi = 0x9F;
                }
            } else if (b0 >= 0xF0 && b0 <= 0xF4) {
                need = 3;
                if (b0 == 0xF0) {
                    lo = 0x90;
                } else if (b0 == 0xF4) {
                    hi = 0x8F;
                }
            } else {
                sb.append('\uFFFD');
                i++;
                continue;
            }
            int cp = b0 & (0x3F >> need);
            int j = i + 1;
            boolean ok = true;
            for (int k = 0; k < need; k++, j++) {
                if (j >= to) {
                    ok = false;
                    break;
                }
                int b = bytes[j] & 0xFF;
                int min = k == 0 ? lo : 0x80;
                int max = k == 0 ? hi : 0xBF;
                if (b < min || b > max) {
                    ok = false;
                    break;
                }
                cp = (cp << 6) | (b & 0x3F);
            }
            if (ok) {
                sb.appendCodePoint(cp);
                i = j;
            } else {
                sb.append('\uFFFD');
                i = j; // the maximal subpart ends before the offending byte
            }
        }
        return sb.toString();
    }

    static String decodeUtf8Lossy(byte[] bytes) {
        return decodeUtf8Lossy(bytes, 0, bytes.length);
    }

    /** Whether {@code bytes} is entirely valid UTF-8. */
    static boolean isValidUtf8(byte[] bytes) {
        return StandardCharsets.UTF_8
                .newDecoder()
                .decode(java.nio.ByteBuffer.wrap(bytes), java.nio.CharBuffer.allocate(bytes.length), true)
                .isUnderflow();
    }
}
