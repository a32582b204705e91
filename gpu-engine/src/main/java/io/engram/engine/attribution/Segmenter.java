package io.engram.engine.attribution;

import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.tokenizer.StreamingDecoder;
import io.engram.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Cuts a session's memory into {@link Segment}s, TracLLM's "texts" (algorithms.md section 7.1: 100-word segments), but
 * aligned to our provenance: a segment never spans two source events or a gap in the memory (blocks dropped by
 * retention), and it ends at the first sentence end after {@code wordsPerSegment} words (or, without one, at twice that
 * many words), always between two words: the cut waits for the next token that starts a word, so closing quotes stay
 * with their sentence and a word of several tokens is never split. Tokens before the first tagged token (BOS) form no
 * segment: they are the {@link #preamble}.
 *
 * <p>Works on the token ids and provenance tags the cache keeps per token, which stay in engine memory when a policy
 * offloads a block's K/V, so it sees everything the session retains. Stateless; thread-safe.
 */
public final class Segmenter {
    /** TracLLM's segment size (algorithms.md section 7.1). */
    public static final int DEFAULT_WORDS = 100;

    private final Tokenizer tokenizer;
    private final int wordsPerSegment;

    public Segmenter(Tokenizer tokenizer, int wordsPerSegment) {
        if (wordsPerSegment < 1) {
            throw new IllegalArgumentException("words per segment must be >= 1, got " + wordsPerSegment);
        }
        this.tokenizer = tokenizer;
        this.wordsPerSegment = wordsPerSegment;
    }

    public int wordsPerSegment() {
        return wordsPerSegment;
    }

    /** The memory's tokens before its first segment (a BOS token, typically), at most {@code max}. */
    public static int[] preamble(KvCache memory, int max) {
        int[] out = new int[max];
        int n = 0;
        for (KvBlock b : memory.blocks()) {
            if (b.firstSeq() != n) {
                break; // the start of the stream was dropped
            }
            for (int s = 0; s < b.length() && n < max; s++) {
                if (b.source(s) != Provenance.NONE) {
                    return Arrays.copyOf(out, n);
                }
                out[n++] = b.token(s);
            }
        }
        return Arrays.copyOf(out, n);
    }

    /** The segments of everything {@code memory} holds, in sequence order, indexed from 0. */
    public List<Segment> segments(KvCache memory) {
        List<Segment> out = new ArrayList<>();
        Builder cur = null;
        List<Integer> separators = new ArrayList<>(); // untagged tokens waiting for the segment they lead into
        long sepFirst = -1;
        long expected = -1;
        for (KvBlock b : memory.blocks()) {
            for (int s = 0; s < b.length(); s++) {
                long seq = b.seq(s);
                long tag = b.source(s);
                if (seq != expected && cur != null) {
                    out.add(cur.build(out.size()));
                    cur = null;
                    separators.clear();
                }
                if (seq != expected) {
                    separators.clear();
                }
                expected = seq + 1;
                if (tag == Provenance.NONE && cur != null && cur.chars() == 0) {
                    cur.tokens.add(b.token(s)); // still in the separators that lead into the segment
                    continue;
                }
                if (tag == Provenance.NONE) {
                    if (cur != null) {
                        out.add(cur.build(out.size())); // separators end a segment: they belong to the next one
                        cur = null;
                    }
                    if (separators.isEmpty()) {
                        sepFirst = seq;
                    }
                    separators.add(b.token(s));
                    continue;
                }
                int event = Provenance.eventIndex(tag);
                String piece = null;
                if (cur != null && cur.event == event && cur.full()) {
                    piece = cur.decoder.accept(b.token(s));
                    if (cur.wordStartsWith(piece)) {
                        piece = null; // decoded again by the next segment's decoder
                        out.add(cur.build(out.size()));
                        cur = null;
                    }
                }
                if (cur != null && cur.event != event) {
                    out.add(cur.build(out.size()));
                    cur = null;
                }
                if (cur == null) {
                    cur = new Builder(
                            event, separators.isEmpty() ? seq : sepFirst, new StreamingDecoder(tokenizer, true));
                    for (int t : separators) {
                        cur.tokens.add(t);
                    }
                    separators.clear();
                }
                if (piece == null) {
                    piece = cur.decoder.accept(b.token(s));
                }
                cur.add(b.token(s), Provenance.charOffset(tag), piece);
            }
        }
        if (cur != null) {
            out.add(cur.build(out.size()));
        }
        return out;
    }

    /** A segment being collected: its tokens, char span and word count. */
    private final class Builder {
        final int event;
        final long firstSeq;
        final StreamingDecoder decoder;
        final List<Integer> tokens = new ArrayList<>();
        int charStart = -1;
        int charEnd;
        int words;
        boolean inWord;
        boolean sentenceEnd;

        Builder(int event, long firstSeq, StreamingDecoder decoder) {
            this.event = event;
            this.firstSeq = firstSeq;
            this.decoder = decoder;
        }

        /**
         * Whether a token whose text is {@code piece} starts a new word after what was collected: it begins with white
         * space, or the text so far ends with some. Text a tokenizer holds back (part of a character) starts none.
         */
        boolean wordStartsWith(String piece) {
            return !piece.isEmpty() && (!inWord || Character.isWhitespace(piece.charAt(0)));
        }

        /** Adds a token whose text, decoded by {@link #decoder} in order, is {@code piece}. */
        void add(int token, int charOffset, String piece) {
            tokens.add(token);
            if (charStart < 0) {
                charStart = charOffset;
            }
            charEnd = Math.max(charEnd, charOffset + piece.length());
            for (int i = 0; i < piece.length(); i++) {
                char c = piece.charAt(i);
                boolean space = Character.isWhitespace(c);
                if (!space && !inWord) {
                    words++;
                }
                inWord = !space;
                if (c == '.' || c == '!' || c == '?' || c == '\n') {
                    sentenceEnd = true;
                } else if (!space && c != '"' && c != '\'' && c != ')') {
                    sentenceEnd = false; // closing quotes and brackets may follow the end of a sentence
                }
            }
        }

        /** Chars of source text collected so far (separator bytes decode to none). */
        int chars() {
            return charStart < 0 ? 0 : charEnd - charStart;
        }

        /**
         * Whether the segment is complete: enough words and a sentence just ended, or far too many words. It is cut
         * before the next token that starts a word, so a word (and a sentence's closing quote) is never split.
         */
        boolean full() {
            return words >= wordsPerSegment && sentenceEnd || words >= 2 * wordsPerSegment;
        }

        Segment build(int index) {
            int[] ids = new int[tokens.size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = tokens.get(i);
            }
            return new Segment(index, event, Math.max(0, charStart), charEnd, firstSeq, ids);
        }
    }
}
