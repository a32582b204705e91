package io.engram.engine.tokenizer;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * A {@code tokenizer.json} decoder: turns the token strings of a sequence into text pieces whose concatenation is the
 * decoded text. Mirrors Hugging Face {@code tokenizers}' {@code decode_chain}.
 *
 * <p>{@code atStart} says whether the first token is the first of the text; {@link Tokenizer#tokenText} passes false
 * so that start-of-text rules (stripping the dummy-prefix space) do not apply to a token in mid-stream.
 */
sealed interface TokenDecoder {

    List<String> decode(List<String> tokens, boolean atStart);

    /** Decodes and concatenates. */
    default String decodeToString(List<String> tokens, boolean atStart) {
        return String.join("", decode(tokens, atStart));
    }

    /** GPT-2 byte alphabet back to bytes, then lossy UTF-8; tokens outside the alphabet pass as their own bytes. */
    record ByteLevel() implements TokenDecoder {
        @Override
        public List<String> decode(List<String> tokens, boolean atStart) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            for (String t : tokens) {
                byte[] mapped = new byte[t.length()];
                boolean ok = true;
                for (int i = 0; i < t.length(); i++) {
                    int b = ByteLevelAlphabet.byteOf(t.charAt(i));
                    if (b < 0) {
                        ok = false;
                        break;
                    }
                    mapped[i] = (byte) b;
                }
                bytes.writeBytes(ok ? mapped : t.getBytes(java.nio.charset.StandardCharsets.UTF_8));
            }
            return List.of(Unicode.decodeUtf8Lossy(bytes.toByteArray()));
        }
    }

    /** Replaces every match of a pattern in each token. */
    record Replace(Pattern pattern, String content) implements TokenDecoder {
        @Override
        public List<String> decode(List<String> tokens, boolean atStart) {
            List<String> out = new ArrayList<>(tokens.size());
            String replacement = java.util.regex.Matcher.quoteReplacement(content);
            for (String t : tokens) {
                out.add(pattern.matcher(t).replaceAll(replacement));
            }
            return out;
        }
    }

    /**
     * Runs of {@code <0xAB>} tokens become their UTF-8 text, or one U+FFFD per byte when the run is not valid UTF-8.
     */
    record ByteFallback() implements TokenDecoder {
        @Override
        public List<String> decode(List<String> tokens, boolean atStart) {
            List<String> out = new ArrayList<>(tokens.size());
            ByteArrayOutputStream run = new ByteArrayOutputStream();
            for (String t : tokens) {
                int b = byteValue(t);
                if (b >= 0) {
                    run.write(b);
                    continue;
                }
                flush(run, out);
                out.add(t);
            }
            flush(run, out);
            return out;
        }

        private static void flush(ByteArrayOutputStream run, List<String> out) {
            if (run.size() == 0) {
                return;
            }
            byte[] bytes = run.toByteArray();
            if (Unicode.isValidUtf8(bytes)) {
                out.add(new String(bytes, java.nio.charset.StandardCharsets.UTF_8));
            } else {
                for (int i = 0; i < bytes.length; i++) {
                    out.add("\uFFFD");
                }
            }
            run.reset();
        }

        /** The byte of a {@code <0xAB>} token, or -1. */
        static int byteValue(String token) {
            if (token.length() != 6 || !token.startsWith("<0x") || token.charAt(5) != '>') {
                return -1;
            }
            int hi = Character.digit(token.charAt(3), 16);
            int lo = Character.digit(token.charAt(4), 16);
            return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
        }
    }

    /** Concatenates all tokens into one. */
    record Fuse() implements TokenDecoder {
        @Override
        public List<String> decode(List<String> tokens, boolean atStart) {
            return List.of(String.join("", tokens));
        }
    }

    /**
     * Removes up to {@code start} leading and {@code stop} trailing {@code content} characters from each token. The
     * leading cut applies only at the start of the text (in the reference it hits every token, but in every decoder
     * chain we support it follows {@code Fuse}, so only the text's first token is affected).
     */
    record Strip(int content, int start, int stop) implements TokenDecoder {
        @Override
        public List<String> decode(List<String> tokens, boolean atStart) {
            List<String> out = new ArrayList<>(tokens.size());
            for (int k = 0; k < tokens.size(); k++) {
                int[] cps = tokens.get(k).codePoints().toArray();
                int from = 0;
                if (atStart || k > 0) {
                    while (from < Math.min(start, cps.length) && cps[from] == content) {
                        from++;
                    }
                }
                int to = cps.length;
                for (int i = 0; i < stop && to > from && cps[to - 1] == content; i++) {
                    to--;
                }
                out.add(new String(cps, from, to - from));
            }
            return out;
        }
    }

    /**
     * Replacement characters back to spaces. As in the reference, the first token of the text loses all of its
     * replacement characters (not only the prepended one) unless the scheme is {@code never}.
     */
    record Metaspace(char replacement, PreTokenizer.PrependScheme prependScheme) implements TokenDecoder {
        @Override
        public List<String> decode(List<String> tokens, boolean atStart) {
            List<String> out = new ArrayList<>(tokens.size());
            for (int k = 0; k < tokens.size(); k++) {
                String t = tokens.get(k);
                StringBuilder sb = new StringBuilder(t.length());
                for (int i = 0; i < t.length(); i++) {
                    char c = t.charAt(i);
                    if (c != replacement) {
                        sb.append(c);
                    } else if (!(k == 0 && atStart && prependScheme != PreTokenizer.PrependScheme.NEVER)) {
                        sb.append(' ');
                    }
                }
                out.add(sb.toString());
            }
            return out;
        }
    }

    /** Applies decoders in order. */
    record Sequence(List<TokenDecoder> steps) implements TokenDecoder {
        @Override
        public List<String> decode(List<String> tokens, boolean atStart) {
            List<String> out = tokens;
            for (TokenDecoder d : steps) {
                out = d.decode(out, atStart);
            }
            return out;
        }
    }
}
