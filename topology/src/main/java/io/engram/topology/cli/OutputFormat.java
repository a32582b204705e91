package io.engram.topology.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.engram.schemas.Answer;
import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionStatus;
import io.engram.schemas.Citation;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.SourceCoordinates;
import io.engram.schemas.SourceSegment;
import io.engram.schemas.Summary;

/** How the CLI prints Engram's outputs for people. */
final class OutputFormat {

    private OutputFormat() {}

    static String coordinates(SourceCoordinates c) {
        return c.getTopic() + "-" + c.getPartition() + "@" + c.getOffset();
    }

    static String segment(SourceSegment s) {
        return "%s event %s chars %d-%d (score %.3f): \"%s\""
                .formatted(
                        coordinates(s.getSource()),
                        s.getEventId(),
                        s.getCharStart(),
                        s.getCharEnd(),
                        s.getScore(),
                        s.getExcerpt());
    }

    /** The answer text, then one line per citation. */
    static String answer(Answer a) {
        StringBuilder sb = new StringBuilder(a.getText()).append('\n');
        for (Citation c : a.getCitations()) {
            sb.append(c.getMarker()).append(' ').append(segment(c.getSegment())).append('\n');
        }
        return sb.toString();
    }

    /** The same from the HTTP endpoint's JSON. */
    static String answer(JsonNode a) {
        StringBuilder sb = new StringBuilder(a.path("text").asText()).append('\n');
        for (JsonNode c : a.path("citations")) {
            JsonNode s = c.path("segment");
            JsonNode src = s.path("source");
            sb.append("%s %s-%d@%d event %s chars %d-%d (score %.3f): \"%s\"%n"
                    .formatted(
                            c.path("marker").asText(),
                            src.path("topic").asText(),
                            src.path("partition").asInt(),
                            src.path("offset").asLong(),
                            s.path("event_id").asText(),
                            s.path("char_start").asInt(),
                            s.path("char_end").asInt(),
                            s.path("score").asDouble(),
                            s.path("excerpt").asText()));
        }
        return sb.toString();
    }

    static String tailLine(Object record) {
        return switch (record) {
            case Answer a ->
                "answer session=%s query=%s tokens=%d: %s"
                        .formatted(a.getSessionId(), a.getQueryId(), a.getGeneratedTokens(), oneLine(a.getText()));
            case Summary s ->
                "summary session=%s %s events %s..%s: %s"
                        .formatted(
                                s.getSessionId(),
                                s.getKind(),
                                coordinates(s.getFirstEvent()),
                                coordinates(s.getLastEvent()),
                                oneLine(s.getText()));
            case Attribution t ->
                "attribution session=%s query=%s %s%s segments=%d%s"
                        .formatted(
                                t.getSessionId(),
                                t.getQueryId(),
                                t.getMethod(),
                                t.getStatus() == AttributionStatus.COMPLETE ? "" : " " + t.getStatus(),
                                t.getSegments().size(),
                                t.getSegments().isEmpty()
                                        ? ""
                                        : " top: " + segment(t.getSegments().getFirst()));
            case DeadLetter d ->
                "dead-letter %s session=%s: %s".formatted(d.getErrorClass(), d.getSessionId(), d.getReason());
            default -> record.toString();
        };
    }

    private static String oneLine(String s) {
        return s.replace('\n', ' ');
    }
}
