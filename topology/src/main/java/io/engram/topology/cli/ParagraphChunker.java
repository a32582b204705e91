package io.engram.topology.cli;

import java.util.function.Consumer;

/**
 * Cuts a text, fed line by line, into chunks of at most {@code maxChars} characters along paragraph boundaries (blank
 * lines). Paragraphs are packed into one chunk while they fit (joined by a blank line); a paragraph longer than the
 * limit is split at the last whitespace before it (or hard, if it has none). Streaming: memory is one chunk.
 * Not thread-safe.
 */
public final class ParagraphChunker {

    private final int maxChars;
    private final Consumer<String> sink;
    private final StringBuilder chunk = new StringBuilder();
    private final StringBuilder paragraph = new StringBuilder();

    /**
     * @param sink receives each chunk, in order, as soon as it is complete
     */
    public ParagraphChunker(int maxChars, Consumer<String> sink) {
        if (maxChars < 1) {
            throw new IllegalArgumentException("maxChars must be > 0, got " + maxChars);
        }
        this.maxChars = maxChars;
        this.sink = sink;
    }

    /** Feeds one line (without its line terminator). */
    public void line(String line) {
        if (line.isBlank()) {
            endParagraph();
        } else {
            if (!paragraph.isEmpty()) {
                paragraph.append('\n');
            }
            paragraph.append(line.stripTrailing());
        }
    }

    /** Ends the input: emits what is left. */
    public void finish() {
        endParagraph();
        if (!chunk.isEmpty()) {
            sink.accept(chunk.toString());
            chunk.setLength(0);
        }
    }

    private void endParagraph() {
        if (paragraph.isEmpty()) {
            return;
        }
        String p = paragraph.toString();
        paragraph.setLength(0);
        if (!chunk.isEmpty() && chunk.length() + 2 + p.length() <= maxChars) {
            chunk.append("\n\n").append(p);
            return;
        }
        if (!chunk.isEmpty()) {
            sink.accept(chunk.toString());
            chunk.setLength(0);
        }
        while (p.length() > maxChars) {
            int cut = splitPoint(p);
            sink.accept(p.substring(0, cut).stripTrailing());
            p = p.substring(cut).stripLeading();
        }
        if (!p.isEmpty()) {
            chunk.append(p);
        }
    }

    private int splitPoint(String p) {
        for (int i = maxChars; i > maxChars / 2; i--) {
            if (Character.isWhitespace(p.charAt(i))) {
                return i;
            }
        }
        // no whitespace in the second half: cut hard, but never inside a surrogate pair
        return Character.isHighSurrogate(p.charAt(maxChars - 1)) ? maxChars - 1 : maxChars;
    }
}
