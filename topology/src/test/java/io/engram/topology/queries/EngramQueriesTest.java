package io.engram.topology.queries;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.SourceCoordinates;
import io.engram.schemas.Summary;
import io.engram.schemas.SummaryKind;
import org.junit.jupiter.api.Test;

class EngramQueriesTest {

    static Summary summary(long last, String text) {
        return Summary.newBuilder()
                .setSessionId("s")
                .setKind(SummaryKind.SESSION)
                .setFirstEvent(new SourceCoordinates("in", 0, 0L))
                .setLastEvent(new SourceCoordinates("in", 0, last))
                .setFirstToken(0L)
                .setLastToken(10L)
                .setText(text)
                .setModel("m")
                .setCreatedAtMs(0L)
                .build();
    }

    @Test
    void aStaleSummaryDoesNotReplaceANewerOne() {
        assertThat(EngramQueries.later(summary(9, "new"), summary(3, "stale")).getText())
                .isEqualTo("new");
        assertThat(EngramQueries.later(summary(3, "old"), summary(9, "new")).getText())
                .isEqualTo("new");
        assertThat(EngramQueries.later(summary(9, "first"), summary(9, "redo")).getText())
                .isEqualTo("redo");
    }
}
