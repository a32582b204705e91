package io.engram.engine.session;

import io.engram.engine.attribution.Segment;
import io.engram.engine.generate.Generation;
import java.util.List;

/**
 * The engine's reply to one query over a session's memory: the answer's text and tokens, and the attention evidence
 * behind it (named apart from the Avro {@code Answer} record the operators emit from it).
 *
 * @param memoryTokens tokens of memory the answer could attend to
 * @param citations segments with attention mass, ranked by it, best first (the fast attribution tier)
 * @param segments the memory's attribution segments when the answer was made, by index
 * @param segmentScores each segment's share of the answer's attention mass, by segment index
 * @param retrieved the memory spans the answer attended to (the units the policy retrieved for it), in memory order;
 *     never the question or the answer itself
 */
public record Reply(
        String text,
        Generation generation,
        long memoryTokens,
        List<AttendedSegment> citations,
        List<Segment> segments,
        double[] segmentScores,
        List<RetrievedSpan> retrieved) {}
