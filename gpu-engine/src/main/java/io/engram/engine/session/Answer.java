package io.engram.engine.session;

import io.engram.engine.attribution.Segment;
import io.engram.engine.generate.Generation;
import java.util.List;

/**
 * The engine's answer to one query over a session's memory.
 *
 * @param memoryTokens tokens of memory the answer could attend to
 * @param citations segments with attention mass, ranked by it, best first (the fast attribution tier)
 * @param segments the memory's attribution segments when the answer was made, by index
 * @param segmentScores each segment's share of the answer's attention mass, by segment index
 * @param retrieved the memory spans the answer attended to (the units the policy retrieved for it), in memory order;
 *     never the question or the answer itself
 */
public record Answer(String text, Generation generation, long memoryTokens, List<Citation> citations, List<Segment> segments,
        double[] segmentScores, List<RetrievedSpan> retrieved) {}
