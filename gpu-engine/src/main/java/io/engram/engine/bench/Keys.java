package io.engram.engine.bench;

import io.engram.engine.bench.QaReplay.Example;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * What a question asks about, so that several facts can share one stream and each question still has one answer. A
 * question's key is the longest run of its words that the fact's own sentence repeats, trimmed of the words most
 * questions of its skill share ("give the special magic number of the crooked quarry" → "crooked quarry"; "what value
 * does lzcfp end up with" → "lzcfp"). A skill whose questions have no such key (the pass key, the user's cat) asks about
 * one thing per stream, so it is planted once.
 */
final class Keys {
    /** A word in more than this share of its skill's questions is common to them, not a key. */
    private static final double COMMON = 0.3;

    private final Map<String, Set<String>> common = new HashMap<>();

    Keys(List<Example> examples) {
        Map<String, Map<String, Integer>> counts = new HashMap<>();
        Map<String, Integer> questions = new HashMap<>();
        for (Example e : examples) {
            questions.merge(e.kind(), 1, Integer::sum);
            for (String w : new HashSet<>(words(e.question()))) {
                counts.computeIfAbsent(e.kind(), k -> new HashMap<>()).merge(w, 1, Integer::sum);
            }
        }
        counts.forEach((kind, c) -> {
            Set<String> set = new HashSet<>();
            c.forEach((w, n) -> {
                if (n > COMMON * questions.get(kind)) {
                    set.add(w);
                }
            });
            common.put(kind, set);
        });
    }

    /** The key of {@code e}'s question in lower case, or null when it has none. */
    String key(Example e) {
        List<String> q = words(e.question());
        Set<String> shared = common.getOrDefault(e.kind(), Set.of());
        String text = String.join(" ", textWords(e));
        String best = null;
        for (int i = 0; i < q.size(); i++) {
            for (int j = q.size(); j > i; j--) {
                int a = i;
                int b = j;
                while (a < b && shared.contains(q.get(a))) {
                    a++;
                }
                while (b > a && shared.contains(q.get(b - 1))) {
                    b--;
                }
                if (a == b) {
                    continue;
                }
                String run = String.join(" ", q.subList(a, b));
                if ((" " + text + " ").contains(" " + run + " ") && (best == null || run.length() > best.length())) {
                    best = run;
                }
            }
        }
        return best;
    }

    /**
     * Whether {@code e} can join {@code chosen} with every question still having one answer: no value shared or
     * mentioned in the other's text, no key of one in the other's text, and one keyless fact per skill.
     */
    boolean unambiguous(Example e, List<Example> chosen) {
        String k = key(e);
        String text = " " + String.join(" ", textWords(e)) + " ";
        for (Example c : chosen) {
            if (c.question().equals(e.question()) || mentions(e, c) || mentions(c, e)) {
                return false;
            }
            String ck = key(c);
            if ((k == null || ck == null) && c.kind().equals(e.kind())) {
                return false;
            }
            String ctext = " " + String.join(" ", textWords(c)) + " ";
            if ((k != null && ctext.contains(" " + k + " ")) || (ck != null && text.contains(" " + ck + " "))) {
                return false;
            }
        }
        return true;
    }

    /** {@code filler} without the pieces that hold the key of one of {@code chosen}'s questions. */
    QaReplay.Filler without(QaReplay.Filler filler, List<Example> chosen) {
        List<String> named =
                chosen.stream().map(this::key).filter(k -> k != null).toList();
        List<String> pieces = new ArrayList<>();
        List<Integer> tokens = new ArrayList<>();
        for (int i = 0; i < filler.pieces().size(); i++) {
            String text = " " + String.join(" ", words(filler.pieces().get(i))) + " ";
            if (named.stream().noneMatch(k -> text.contains(" " + k + " "))) {
                pieces.add(filler.pieces().get(i));
                tokens.add(filler.tokens().get(i));
            }
        }
        if (pieces.isEmpty()) {
            throw new IllegalArgumentException("no filler left: every piece names a planted fact's key");
        }
        return new QaReplay.Filler(List.copyOf(pieces), List.copyOf(tokens));
    }

    /** Whether the text of {@code a} holds a value of {@code b} (asking b would find a's text too). */
    private static boolean mentions(Example a, Example b) {
        return b.values().stream().anyMatch(v -> a.pieces().stream().anyMatch(p -> p.contains(v)));
    }

    private static List<String> textWords(Example e) {
        List<String> out = new ArrayList<>();
        e.pieces().forEach(p -> out.addAll(words(p)));
        return out;
    }

    static List<String> words(String s) {
        return Arrays.stream(s.toLowerCase(Locale.ROOT).split("[^\\p{L}\\p{N}']+"))
                .filter(w -> !w.isEmpty())
                .toList();
    }
}
