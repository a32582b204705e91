package io.engram.engine.attribution;

/**
 * A text of a session's context that attribution scores as one unit: a run of consecutive memory tokens of one source
 * event (about {@link Segmenter#wordsPerSegment()} words, cut at a sentence end), with the separator tokens that lead
 * into it.
 *
 * @param index 0-based position of the segment in the session's context
 * @param eventIndex index of the source event in its session (see {@code session.Provenance})
 * @param charStart first char of the segment's text in the event's text (UTF-16 index, inclusive)
 * @param charEnd end of the segment's text in the event's text (exclusive; may pass the event's length by a
 *     tokenizer's added space, callers clamp it)
 * @param firstSeq sequence index of the segment's first token in the session's memory (separators included)
 * @param tokens the segment's token ids in memory order, separators first
 */
public record Segment(int index, int eventIndex, int charStart, int charEnd, long firstSeq, int[] tokens) {

    /** Sequence index after the segment's last token. */
    public long endSeq() {
        return firstSeq + tokens.length;
    }

    /** Whether sequence index {@code seq} belongs to this segment. */
    public boolean contains(long seq) {
        return seq >= firstSeq && seq < endSeq();
    }
}
