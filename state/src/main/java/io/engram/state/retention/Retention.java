package io.engram.state.retention;

import io.engram.schemas.RetentionPolicy;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Which stored blocks a session gives up when it holds more than its cap: never the first block (the stream's
 * opening, where attention sinks are) nor the most recent {@code protectRecent} blocks; among the others, the oldest
 * first ({@link RetentionPolicy#DROP_OLDEST}) or the lowest mean token score first ({@link
 * RetentionPolicy#DROP_LOWEST_SCORED}: the least surprising, least informative text; unscored blocks count as oldest).
 */
public final class Retention {

    /** A stored block as retention sees it. */
    public record Candidate(long id, long firstSeq, int tokens, long bytes, double meanScore) {}

    /**
     * @param maxTokens cap on the session's stored tokens, 0 for none
     * @param maxBytes cap on the session's stored bytes, 0 for none
     * @param protectRecent most recent blocks never dropped
     * @return the blocks to drop, in the order chosen
     */
    public static List<Candidate> choose(
            List<Candidate> blocks, RetentionPolicy policy, long maxTokens, long maxBytes, int protectRecent) {
        long tokens = 0;
        long bytes = 0;
        for (Candidate c : blocks) {
            tokens += c.tokens();
            bytes += c.bytes();
        }
        if (policy == RetentionPolicy.KEEP_ALL || !(over(tokens, maxTokens) || over(bytes, maxBytes))) {
            return List.of();
        }
        List<Candidate> sorted = new ArrayList<>(blocks);
        sorted.sort(Comparator.comparingLong(Candidate::firstSeq));
        List<Candidate> pool = new ArrayList<>(sorted.subList(
                Math.min(1, sorted.size()), Math.max(Math.min(1, sorted.size()), sorted.size() - protectRecent)));
        if (policy == RetentionPolicy.DROP_LOWEST_SCORED) {
            pool.sort(Comparator.<Candidate>comparingDouble(
                            c -> Double.isNaN(c.meanScore()) ? Double.NEGATIVE_INFINITY : c.meanScore())
                    .thenComparingLong(Candidate::firstSeq));
        }
        List<Candidate> out = new ArrayList<>();
        for (Candidate c : pool) {
            if (!(over(tokens, maxTokens) || over(bytes, maxBytes))) {
                break;
            }
            out.add(c);
            tokens -= c.tokens();
            bytes -= c.bytes();
        }
        return out;
    }

    private static boolean over(long value, long cap) {
        return cap > 0 && value > cap;
    }

    private Retention() {}
}
