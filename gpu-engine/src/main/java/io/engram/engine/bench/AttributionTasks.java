package io.engram.engine.bench;

import io.engram.engine.attribution.Segment;
import io.engram.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * Generated sessions where the text that supports each answer is known: ground truth for attribution. Events are
 * story-like filler (in the distribution of a story model); in some of them a needle is planted: a sentence that ends
 * with a made-up name ("Sam had a frog named Bozi."), whose lead is unique in the session. The "question" repeats the
 * needle's sentence up to the name, and the "answer" is the name: a model that copies (induction heads: a token that followed
 * the same prefix before is likely next) gives the value a log-probability that truly depends on the needle, while the
 * other needles are distractors made of the same kind of words. A question may have its needle planted in several
 * events (redundant support, TracLLM's srt setting), which leave-one-out alone cannot see.
 */
public final class AttributionTasks {
    private static final String[] NAMES = {"Tim", "Sue", "Lily", "Ben", "Mia", "Max", "Anna", "Tom", "Lucy", "Sam"};
    private static final String[] PLACES = {"park", "garden", "forest", "beach", "house", "school", "lake", "farm"};
    private static final String[] THINGS = {"ball", "kite", "cat", "dog", "box", "cake", "flower", "toy", "bird", "boat"
    };
    private static final String[] COLORS = {"red", "blue", "green", "big", "little", "happy", "shiny", "soft"};
    private static final String[] VERBS = {"played with", "found", "saw", "liked", "wanted", "looked at", "made", "had"
    };
    private static final String[] PETS = {"dog", "cat", "frog", "bird", "fish", "duck", "bunny", "horse"};
    private static final String SYLLABLES =
            "ba be bi bo bu da de di do du ka ke ki ko ku la le li lo lu ma me mi mo mu "
                    + "na ne ni no nu pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu za ze zi zo zu";

    /** Where one copy of a needle sits: its event and the char span of the needle sentence in the event's text. */
    public record Copy(int event, int charStart, int charEnd) {}

    /**
     * One question with its known support.
     *
     * @param question text the answer continues (the needle sentence up to the name), or a question in the
     *     question-answer format ({@link #fromFacts})
     * @param answer the name, or the expected answer, with its leading space
     */
    public record Question(String question, String answer, List<Copy> copies) {
        /** Indices of the segments that hold (part of) a copy of the needle: the ground truth. */
        public Set<Integer> supporting(List<Segment> segments) {
            Set<Integer> out = new HashSet<>();
            for (Segment s : segments) {
                for (Copy c : copies) {
                    if (s.eventIndex() == c.event() && s.charStart() < c.charEnd() && c.charStart() < s.charEnd()) {
                        out.add(s.index());
                    }
                }
            }
            return out;
        }
    }

    /** A generated session: its events in order and the questions over them. */
    public record Session(List<String> events, List<Question> questions, int tokens) {}

    private final Tokenizer tokenizer;

    public AttributionTasks(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /**
     * A session of about {@code targetTokens} tokens in events of about {@code wordsPerEvent} words, with
     * {@code needles} questions whose needles are planted in {@code copies} distinct events each (needles need
     * {@code needles * copies} events; more events are made when the target is small).
     */
    public Session generate(int targetTokens, int wordsPerEvent, int needles, int copies, Random rnd) {
        List<StringBuilder> events = new ArrayList<>();
        int tokens = 0;
        while (tokens < targetTokens || events.size() < needles * copies + 1) {
            StringBuilder e = new StringBuilder();
            int words = 0;
            while (words < wordsPerEvent) {
                String s = sentence(rnd);
                e.append(e.isEmpty() ? "" : " ").append(s);
                words += s.split(" ").length;
            }
            tokens += tokenizer.encode(e.toString(), false).length + 1;
            events.add(e);
        }
        // distinct events for every copy of every needle, never the first event (attention sinks live there)
        List<Integer> slots = new ArrayList<>();
        for (int i = 1; i < events.size(); i++) {
            slots.add(i);
        }
        java.util.Collections.shuffle(slots, rnd);
        Set<String> used = new HashSet<>();
        List<Question> questions = new ArrayList<>();
        Set<String> leads = new HashSet<>();
        for (int n = 0; n < needles; n++) {
            String lead;
            do {
                lead = NAMES[rnd.nextInt(NAMES.length)] + " had a " + PETS[rnd.nextInt(PETS.length)] + " named";
            } while (!leads.add(lead));
            String w = word(rnd, used);
            String value = " " + Character.toUpperCase(w.charAt(0)) + w.substring(1);
            String needle = lead + value + ".";
            List<Copy> copyList = new ArrayList<>();
            for (int c = 0; c < copies; c++) {
                int ev = slots.get(n * copies + c);
                StringBuilder e = events.get(ev);
                int at = sentenceStart(e, rnd);
                e.insert(at, needle + " ");
                copyList.add(new Copy(ev, at, at + needle.length()));
            }
            questions.add(new Question(lead, value, copyList));
        }
        // a later needle inserted into the same event shifts earlier copies: recompute their spans
        List<String> texts = new ArrayList<>();
        for (StringBuilder e : events) {
            texts.add(e.toString());
        }
        List<Question> located = new ArrayList<>();
        for (Question q : questions) {
            List<Copy> fixed = new ArrayList<>();
            for (Copy c : q.copies()) {
                int at = texts.get(c.event()).indexOf(q.question() + q.answer() + ".");
                fixed.add(new Copy(
                        c.event(), at, at + q.question().length() + q.answer().length() + 1));
            }
            located.add(new Question(q.question(), q.answer(), List.copyOf(fixed)));
        }
        int total = 0;
        for (String t : texts) {
            total += tokenizer.encode(t, false).length + 1;
        }
        return new Session(List.copyOf(texts), List.copyOf(located), total);
    }

    /**
     * A session of held-out QA facts ({@link QaStream}): the stream's events, and per fact its question (asked in the
     * question-answer format, in other words than the fact's sentence: held-out phrasings), the expected answer with its
     * leading space, and as support every place in the fact's own events where its value stands.
     */
    public static Session fromFacts(QaStream.Stream stream) {
        List<Question> questions = new ArrayList<>();
        for (QaStream.Planted f : stream.facts()) {
            String value = f.example().values().getFirst();
            List<Copy> copies = new ArrayList<>();
            for (int e = f.firstEvent(); e < f.endEvent(); e++) {
                String text = stream.events().get(e);
                for (int at = text.indexOf(value); at >= 0; at = text.indexOf(value, at + 1)) {
                    copies.add(new Copy(e, at, at + value.length()));
                }
            }
            questions.add(new Question(f.example().question(), " " + f.example().expected(), List.copyOf(copies)));
        }
        return new Session(stream.events(), List.copyOf(questions), (int) stream.tokens());
    }

    private static String sentence(Random rnd) {
        String name = NAMES[rnd.nextInt(NAMES.length)];
        return switch (rnd.nextInt(4)) {
            case 0 -> name + " went to the " + PLACES[rnd.nextInt(PLACES.length)] + ".";
            case 1 ->
                name + " " + VERBS[rnd.nextInt(VERBS.length)] + " a " + COLORS[rnd.nextInt(COLORS.length)] + " "
                        + THINGS[rnd.nextInt(THINGS.length)] + ".";
            case 2 ->
                "The " + THINGS[rnd.nextInt(THINGS.length)] + " was very " + COLORS[rnd.nextInt(COLORS.length)] + ".";
            default ->
                name + " and " + NAMES[rnd.nextInt(NAMES.length)] + " were happy in the "
                        + PLACES[rnd.nextInt(PLACES.length)] + ".";
        };
    }

    /** A made-up word of two syllables, not used before in the session. */
    private static String word(Random rnd, Set<String> used) {
        String[] syl = SYLLABLES.split(" ");
        while (true) {
            StringBuilder w = new StringBuilder();
            int n = 2;
            for (int i = 0; i < n; i++) {
                w.append(syl[rnd.nextInt(syl.length)]);
            }
            if (used.add(w.toString())) {
                return w.toString();
            }
        }
    }

    /** A random sentence start in the text (0 or just after ". "). */
    private static int sentenceStart(StringBuilder e, Random rnd) {
        List<Integer> starts = new ArrayList<>();
        starts.add(0);
        for (int i = e.indexOf(". "); i >= 0; i = e.indexOf(". ", i + 1)) {
            starts.add(i + 2);
        }
        return starts.get(rnd.nextInt(starts.size()));
    }
}
