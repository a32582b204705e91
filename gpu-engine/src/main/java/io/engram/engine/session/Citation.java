package io.engram.engine.session;

/**
 * A source event that supported an answer, with the char span of the most attended passage in it.
 *
 * @param eventIndex index of the source event in its session (see {@link Provenance})
 * @param charStart first char of the passage in the event's text
 * @param charEnd end (exclusive) of the passage
 * @param score share of the answer's attention mass on this event's tokens, in (0, 1]
 */
public record Citation(int eventIndex, int charStart, int charEnd, double score) {}
