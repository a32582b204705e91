package io.engram.engine.session;

/**
 * A segment of a source event that supported an answer.
 *
 * @param eventIndex index of the source event in its session (see {@link io.engram.engine.attribution.Provenance})
 * @param charStart first char of the segment in the event's text
 * @param charEnd end (exclusive) of the segment
 * @param score share of the answer's attention mass on this segment's tokens, in (0, 1]
 * @param segment index of the segment among the memory's attribution segments
 */
public record AttendedSegment(int eventIndex, int charStart, int charEnd, double score, int segment) {}
