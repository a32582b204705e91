package io.engram.engine.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.IntFunction;

/** Test texts for tokenizer comparisons: a fixed varied corpus plus seeded random strings. */
final class TokenizerCorpus {

    private TokenizerCorpus() {}

    /** Hand-picked texts covering the pre-tokenizer and byte-fallback edge cases. */
    static List<String> varied() {
        List<String> t = new ArrayList<>(List.of(
                "",
                " ",
                "  ",
                "\n",
                "\t",
                "Hello, world! The vault code is 7481.",
                "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.",
                "The quick brown fox jumps over the lazy dog.\nIt was the best of times, it was the worst of times.",
                "def main():\n    for i in range(10):\n\tprint(f\"{i:>4}\")  # tab-indented\n        return None\n",
                "public static void main(String[] args) {\n    System.out.println(\"hi\");\n}\n",
                "a  b   c    d     e      f",
                "trailing spaces   ",
                "   leading spaces",
                "line1\nline2\n\nline4\n\n\n\nline8",
                "windows\r\nline\r\nendings\r\n",
                "mixed \t \n \r\n whitespace \u000B\u000C end",
                "12345678901234567890 3.14159 1,000,000 2024-11-23 0x1F 007",
                "Numbers: 1 12 123 1234 12345 123456 1234567",
                "!!!???... ---___ (nested [brackets] {here}) <html> &amp; @user #tag $5 %20 ^_^ ~~",
                "“Smart quotes” and ‘single’ — em-dash – en-dash … ellipsis",
                "don't can't it's they're we've I'm we'll he'd DON'T IT'S WE'LL I'M",
                "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D",
                "the Kelvin sign 'K and long s 'ſ and 'İ",
                "café naïve résumé Ünïcödé façade coöperate",
                "decomposed e\u0301 and a\u0308 and n\u0303 (NFC composes them)",
                "日本語のテキストです。東京は大きい。",
                "中文测试：你好，世界！这是一个句子。",
                "안녕하세요 세계, 한국어 문장입니다.",
                "Привет, мир! Это тест на русском языке.",
                "مرحبا بالعالم، هذا اختبار.",
                "नमस्ते दुनिया, यह एक परीक्षण है।",
                "สวัสดีชาวโลก Ελληνικά עברית ქართული",
                "emoji 😀😃😄 👍🏽 ❤️ 🔥",
                "family 👨‍👩‍👧‍👦 and 🏳️‍🌈 and 🧑🏿‍💻",
                "flags 🇫🇷🇯🇵🇺🇸🇩🇪",
                "nbsp\u00A0here and narrow\u202Fnbsp and figure\u2007space",
                "zero\u200Bwidth\u200Cnon\u200Djoiner\u2060word",
                "\uFEFFbyte order mark",
                "hair\u200Aspace thin\u2009space ideographic\u3000space",
                "math ∑∫∂√∞≠≤≥ ½ ¾ ² ³ ℕ ℝ",
                "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
                "<|endoftext|>",
                "<s>",
                "</s>",
                "<unk>",
                "Hello <s> world",
                "a</s>b",
                "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
                "<think>\nreasoning\n</think>\n\nanswer",
                "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
                "▁ literal lower one eighth block ▁▁",
                "<0x41> looks like a byte token",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "ab".repeat(300),
                "supercalifragilisticexpialidocious antidisestablishmentarianism",
                "URL https://example.com/a/b?c=d&e=f#g and email foo.bar@example.org",
                "JSON {\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
                "\u0000\u0001\u001F control chars \u007F",
                "surrogate pair 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and 𝟙𝟚𝟛 math digits",
                "Ⅻ Roman numeral and ① circled and ٣ Arabic-Indic digit"));
        t.add("Once upon a time ".repeat(40));
        return t;
    }

    /**
     * Seeded random strings mixing vocabulary pieces ({@code piece} maps a random id to its text), ASCII, whitespace,
     * digits and characters from many scripts, emoji and special tokens.
     */
    static List<String> random(long seed, int count, int vocabSize, IntFunction<String> piece, List<String> specials) {
        Random rnd = new Random(seed);
        List<String> out = new ArrayList<>(count);
        int[][] ranges = {
            {0x20, 0x7E},
            {0x20, 0x7E},
            {0x20, 0x7E},
            {0xA0, 0xFF},
            {0x100, 0x24F},
            {0x370, 0x3FF},
            {0x400, 0x4FF},
            {0x590, 0x5FF},
            {0x600, 0x6FF},
            {0x900, 0x97F},
            {0xE00, 0xE7F},
            {0x3040, 0x30FF},
            {0x4E00, 0x4FFF},
            {0xAC00, 0xAD00},
            {0x1F300, 0x1F64F},
            {0x1F900, 0x1F9FF},
            {0x2000, 0x206F},
            {0x0300, 0x036F},
            {0x2150, 0x218F},
            {0xFF00, 0xFFEF},
            {0x1D400, 0x1D4FF}
        };
        String[] ws = {" ", "  ", "\n", "\t", "\r\n", "\u00A0", "\u3000", "\u200B", " \n ", "\n\n"};
        for (int i = 0; i < count; i++) {
            StringBuilder sb = new StringBuilder();
            int parts = 1 + rnd.nextInt(12);
            for (int p = 0; p < parts; p++) {
                int kind = rnd.nextInt(10);
                switch (kind) {
                    case 0, 1, 2 -> sb.append(piece.apply(rnd.nextInt(vocabSize)));
                    case 3 -> sb.append(ws[rnd.nextInt(ws.length)]);
                    case 4 -> sb.append(rnd.nextInt(100000));
                    case 5 -> {
                        if (!specials.isEmpty() && rnd.nextInt(4) == 0) {
                            sb.append(specials.get(rnd.nextInt(specials.size())));
                        } else {
                            sb.append("'s");
                        }
                    }
                    default -> {
                        int[] r = ranges[rnd.nextInt(ranges.length)];
                        int n = 1 + rnd.nextInt(6);
                        for (int k = 0; k < n; k++) {
                            int cp = r[0] + rnd.nextInt(r[1] - r[0] + 1);
                            if (Character.isDefined(cp)
                                    && Character.getType(cp) != Character.SURROGATE
                                    && Character.getType(cp) != Character.UNASSIGNED) {
                                sb.appendCodePoint(cp);
                            }
                        }
                    }
                }
            }
            out.add(sb.toString());
        }
        return out;
    }

    /** Java-escaped rendering for failure messages. */
    static String escape(String s) {
        StringBuilder sb = new StringBuilder("\"");
        s.codePoints().forEach(cp -> {
            if (cp == '\n') {
                sb.append("\\n");
            } else if (cp == '\t') {
                sb.append("\\t");
            } else if (cp == '\r') {
                sb.append("\\r");
            } else if (cp < 0x20
                    || (cp >= 0x7F && cp < 0xA1)
                    || Character.getType(cp) == Character.FORMAT
                    || Character.isSpaceChar(cp) && cp != ' ') {
                sb.append(cp > 0xFFFF ? "\\U%06X".formatted(cp) : "\\u%04X".formatted(cp));
            } else {
                sb.appendCodePoint(cp);
            }
        });
        return sb.append('"').toString();
    }

    /** Shortens long strings in failure messages. */
    static String abbreviate(String s) {
        return s.length() <= 300 ? s : s.substring(0, 300) + "...(" + s.length() + " chars)";
    }

    /** Where two id arrays first differ, with a little context. */
    static String diff(int[] actual, int[] expected) {
        int i = 0;
        while (i < actual.length && i < expected.length && actual[i] == expected[i]) {
            i++;
        }
        int from = Math.max(0, i - 3);
        return "first difference at index %d (lengths ours %d, reference %d): ours ...%s, reference ...%s"
                .formatted(
                        i,
                        actual.length,
                        expected.length,
                        java.util.Arrays.toString(
                                java.util.Arrays.copyOfRange(actual, from, Math.min(actual.length, i + 5))),
                        java.util.Arrays.toString(
                                java.util.Arrays.copyOfRange(expected, from, Math.min(expected.length, i + 5))));
    }
}
