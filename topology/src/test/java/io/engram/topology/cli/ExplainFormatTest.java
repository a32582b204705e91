package io.engram.topology.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.Attribution;
import io.engram.schemas.AttributionMethod;
import io.engram.schemas.AttributionStatus;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What {@code engram explain} and {@code engram tail} print for a complete and for a skipped PRECISE record. */
class ExplainFormatTest {

    static Attribution record(AttributionStatus status) {
        return Attribution.newBuilder()
                .setSessionId("s1")
                .setQueryId("q7")
                .setMethod(AttributionMethod.PRECISE)
                .setSegments(List.of())
                .setElapsedMs(0)
                .setCreatedAtMs(1L)
                .setStatus(status)
                .build();
    }

    @Test
    void aSkippedRecordSaysWhy() {
        String text = ExplainCommand.format(record(AttributionStatus.SKIPPED_BACKLOG));
        assertThat(text)
                .startsWith("PRECISE attribution of query q7 in session s1")
                .contains("skipped")
                .contains("engram.attribution.max-pending")
                .doesNotContain("no supporting segments");
        assertThat(OutputFormat.tailLine(record(AttributionStatus.SKIPPED_BACKLOG)))
                .contains("PRECISE SKIPPED_BACKLOG segments=0");
    }

    @Test
    void aCompleteRecordWithoutSegmentsSaysSo() {
        String text = ExplainCommand.format(record(AttributionStatus.COMPLETE));
        assertThat(text).contains("no supporting segments").doesNotContain("skipped");
        assertThat(OutputFormat.tailLine(record(AttributionStatus.COMPLETE))).contains("PRECISE segments=0");
    }
}
