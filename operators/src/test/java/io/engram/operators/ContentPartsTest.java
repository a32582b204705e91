package io.engram.operators;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.schemas.ContentEvent;
import io.engram.schemas.ContentKind;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.SourceCoordinates;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Long content events are cut before a space into parts that put the text back together, each within the bound. */
class ContentPartsTest {

    private static EngramEvent content(String text) {
        return EngramEvent.newBuilder()
                .setSessionId("s")
                .setEventId("e")
                .setTimestampMs(1L)
                .setPayload(ContentEvent.newBuilder()
                        .setKind(ContentKind.DOCUMENT_CHUNK)
                        .setText(text)
                        .setRole("user")
                        .build())
                .setSource(new SourceCoordinates("in", 0, 7L))
                .build();
    }

    @Test
    void partsAreCutBeforeASpaceAndJoinBackIntoTheText() {
        String text = "The keeper counted forty gulls on the cliffs.  Then   it rained.\n\nThe ferry left at nine. "
                .repeat(40);
        List<EngramEvent> parts = ContentParts.split(content(text), 100);
        StringBuilder joined = new StringBuilder();
        for (int i = 0; i < parts.size(); i++) {
            EngramEvent p = parts.get(i);
            String t = ((ContentEvent) p.getPayload()).getText();
            assertThat(t.length()).isLessThanOrEqualTo(100);
            assertThat(p.getPart().getIndex()).isEqualTo(i);
            assertThat(p.getPart().getCount()).isEqualTo(parts.size());
            assertThat(p.getPart().getCharOffset()).isEqualTo(joined.length());
            assertThat(p.getEventId()).isEqualTo("e");
            assertThat(p.getSource()).isEqualTo(new SourceCoordinates("in", 0, 7L));
            if (i > 0) {
                assertThat(t).as("a part starts with the space before a word").startsWith(" ");
                assertThat(joined.charAt(joined.length() - 1)).isNotEqualTo(' ');
            }
            joined.append(t);
        }
        assertThat(joined.toString()).isEqualTo(text);
        assertThat(parts.size()).isGreaterThan(text.length() / 100);
    }

    @Test
    void aShortEventOrAQueryStaysWholeAndTextWithoutSpacesIsCutAtTheBound() {
        EngramEvent shortOne = content("The vault code is 7481.");
        assertThat(ContentParts.split(shortOne, 100)).containsExactly(shortOne);
        String dense = "\uD83D\uDE00".repeat(60) + "x".repeat(99); // surrogate pairs are never split
        int[] cuts = ContentParts.cuts(dense, 25);
        for (int c : cuts) {
            assertThat(Character.isLowSurrogate(dense.charAt(c))).isFalse();
        }
        assertThat(cuts[0]).isZero();
        for (int i = 1; i < cuts.length; i++) {
            assertThat(cuts[i] - cuts[i - 1]).isBetween(24, 25);
        }
        assertThat(dense.length() - cuts[cuts.length - 1]).isLessThanOrEqualTo(25);
    }
}
