package io.engram.topology.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ParagraphChunkerTest {

    static List<String> chunk(String text, int max) {
        List<String> out = new ArrayList<>();
        ParagraphChunker c = new ParagraphChunker(max, out::add);
        text.lines().forEach(c::line);
        c.finish();
        return out;
    }

    @Test
    void packsParagraphsWhileTheyFit() {
        String text = "aaaa\nbbbb\n\ncccc\n\n\n\ndddd dddd\n";
        assertThat(chunk(text, 20)).containsExactly("aaaa\nbbbb\n\ncccc", "dddd dddd");
        assertThat(chunk(text, 1000)).containsExactly("aaaa\nbbbb\n\ncccc\n\ndddd dddd");
        assertThat(chunk(text, 9)).containsExactly("aaaa\nbbbb", "cccc", "dddd dddd");
    }

    @Test
    void splitsLongParagraphsAtWhitespaceAndNeverLosesText() {
        String para = "word ".repeat(50).strip();
        List<String> chunks = chunk(para, 32);
        assertThat(chunks).allSatisfy(c -> assertThat(c.length()).isLessThanOrEqualTo(32));
        assertThat(chunks).allSatisfy(c -> assertThat(c).doesNotStartWith(" ").doesNotEndWith(" "));
        assertThat(String.join(" ", chunks)).isEqualTo(para);
    }

    @Test
    void cutsHardWithoutWhitespaceButKeepsSurrogatePairs() {
        String emoji = "\uD83D\uDE00".repeat(20); // 40 UTF-16 units
        List<String> chunks = chunk(emoji, 7);
        assertThat(String.join("", chunks)).isEqualTo(emoji);
        assertThat(chunks)
                .allSatisfy(
                        c -> assertThat(Character.isLowSurrogate(c.charAt(0))).isFalse());
    }

    @Test
    void emptyInputGivesNoChunks() {
        assertThat(chunk("\n\n  \n", 10)).isEmpty();
    }
}
