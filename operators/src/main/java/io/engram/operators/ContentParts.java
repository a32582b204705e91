package io.engram.operators;

import io.engram.schemas.ContentEvent;
import io.engram.schemas.EngramEvent;
import io.engram.schemas.EventPart;
import java.util.ArrayList;
import java.util.List;

/**
 * Cuts a long content event into parts of at most {@code maxChars} characters, so that the session operator ingests
 * it in several calls and checkpoints (unaligned once alignment takes long) can pass between them instead of waiting for
 * one prefill of the whole text. A cut falls before a space that follows a non-space character, so each part after the
 * first starts with the space that a byte-level BPE tokenizer attaches to the next word: the parts tokenize as the whole
 * text does. A text with no such space within a part's length is cut at the length (between UTF-16 surrogates never).
 * The parts carry the event's id and source, and {@link EventPart} (index, count, where the part starts in the text).
 */
public final class ContentParts {
    private ContentParts() {}

    /** Where the parts of {@code text} start (the first at 0), each at most {@code maxChars} long. */
    public static int[] cuts(String text, int maxChars) {
        if (maxChars < 2) {
            throw new IllegalArgumentException("parts need at least 2 characters, got " + maxChars);
        }
        List<Integer> starts = new ArrayList<>();
        int start = 0;
        starts.add(0);
        while (text.length() - start > maxChars) {
            int limit = start + maxChars;
            int cut = -1;
            for (int i = limit; i > start + maxChars / 2; i--) {
                if (text.charAt(i) == ' ' && !Character.isWhitespace(text.charAt(i - 1))) {
                    cut = i;
                    break;
                }
            }
            if (cut < 0) {
                cut = Character.isLowSurrogate(text.charAt(limit)) ? limit - 1 : limit;
            }
            starts.add(cut);
            start = cut;
        }
        return starts.stream().mapToInt(Integer::intValue).toArray();
    }

    /** {@code event} as parts of at most {@code maxChars} characters, or itself alone when it is short or not content. */
    public static List<EngramEvent> split(EngramEvent event, int maxChars) {
        if (!(event.getPayload() instanceof ContentEvent c) || c.getText().length() <= maxChars) {
            return List.of(event);
        }
        String text = c.getText();
        int[] cuts = cuts(text, maxChars);
        List<EngramEvent> parts = new ArrayList<>(cuts.length);
        for (int i = 0; i < cuts.length; i++) {
            int end = i + 1 < cuts.length ? cuts[i + 1] : text.length();
            ContentEvent piece = ContentEvent.newBuilder(c)
                    .setText(text.substring(cuts[i], end))
                    .build();
            parts.add(EngramEvent.newBuilder(event)
                    .setPayload(piece)
                    .setPart(new EventPart(i, cuts.length, cuts[i]))
                    .build());
        }
        return parts;
    }
}
