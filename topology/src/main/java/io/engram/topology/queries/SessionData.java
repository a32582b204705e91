package io.engram.topology.queries;

import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.Summary;
import java.util.List;

/**
 * Everything the query app holds about one session, each list in topic order (see {@link SessionLog}).
 *
 * @param events the input's content, query and control events of the session, with their coordinates
 * @param answers the session's answers
 * @param summaries every summary of the session (episode and session summaries)
 * @param attributions every attribution of the session's answers
 * @param latestSummary the summary covering the latest input, or null
 * @param truncated whether older records were left out (each list holds a log's newest records only)
 */
public record SessionData(
        String sessionId,
        List<EngramEvent> events,
        List<Answer> answers,
        List<Summary> summaries,
        List<Attribution> attributions,
        Summary latestSummary,
        boolean truncated) {

    /** Everything, nothing left out. */
    public SessionData(
            String sessionId,
            List<EngramEvent> events,
            List<Answer> answers,
            List<Summary> summaries,
            List<Attribution> attributions,
            Summary latestSummary) {
        this(sessionId, events, answers, summaries, attributions, latestSummary, false);
    }

    public SessionData {
        events = List.copyOf(events);
        answers = List.copyOf(answers);
        summaries = List.copyOf(summaries);
        attributions = List.copyOf(attributions);
    }

    /** Whether the query app knows nothing of the session. */
    public boolean isEmpty() {
        return events.isEmpty()
                && answers.isEmpty()
                && summaries.isEmpty()
                && attributions.isEmpty()
                && latestSummary == null;
    }
}
