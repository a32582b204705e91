package io.engram.engine.model.synthetic;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A small deterministic byte-level BPE trainer (GPT-2 conventions: bytes mapped to printable code points, GPT-2
 * pre-tokenizer regex). Enough to give synthetic test models a real {@code tokenizer.json}; not a production trainer.
 */
final class BpeTrainer {
    static final Pattern GPT2_SPLIT =
            Pattern.compile("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");

    /** The trained vocabulary (piece → id, bytes first) and merges in rank order. */
    record Result(Map<String, Integer> vocab, List<String> merges) {}

    /** GPT-2's reversible map from bytes to printable code points. */
    static String[] byteToUnicode() {
        List<Integer> bs = new ArrayList<>();
        for (int b = '!'; b <= '~'; b++) {
            bs.add(b);
        }
        for (int b = 0xA1; b <= 0xAC; b++) {
            bs.add(b);
        }
        for (int b = 0xAE; b <= 0xFF; b++) {
            bs.add(b);
        }
        String[] map = new String[256];
        int n = 0;
        for (int b = 0; b < 256; b++) {
            if (bs.contains(b)) {
                map[b] = new String(Character.toChars(b));
            } else {
                map[b] = new String(Character.toChars(256 + n++));
            }
        }
        return map;
    }

    static Result train(String corpus, int merges) {
        String[] b2u = byteToUnicode();
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int b = 0; b < 256; b++) {
            vocab.put(b2u[b], b);
        }
        Map<List<String>, Integer> words = new HashMap<>();
        Matcher m = GPT2_SPLIT.matcher(corpus);
        while (m.find()) {
            List<String> sym = new ArrayList<>();
            for (byte x : m.group().getBytes(StandardCharsets.UTF_8)) {
                sym.add(b2u[x & 0xFF]);
            }
            words.merge(sym, 1, Integer::sum);
        }
        List<String> mergeList = new ArrayList<>();
        for (int step = 0; step < merges; step++) {
            TreeMap<String, Integer> pairs = new TreeMap<>(); // sorted: ties broken by the pair text
            for (var e : words.entrySet()) {
                List<String> s = e.getKey();
                for (int i = 0; i + 1 < s.size(); i++) {
                    pairs.merge(s.get(i) + " " + s.get(i + 1), e.getValue(), Integer::sum);
                }
            }
            String best = null;
            int bestCount = 1;
            for (var p : pairs.entrySet()) {
                if (p.getValue() > bestCount) {
                    best = p.getKey();
                    bestCount = p.getValue();
                }
            }
            if (best == null) {
                break;
            }
            String[] ab = best.split(" ", 2);
            String joined = ab[0] + ab[1];
            mergeList.add(best);
            vocab.putIfAbsent(joined, vocab.size());
            Map<List<String>, Integer> next = new HashMap<>();
            for (var e : words.entrySet()) {
                List<String> s = e.getKey();
                List<String> t = new ArrayList<>(s.size());
                for (int i = 0; i < s.size(); i++) {
                    if (i + 1 < s.size()
                            && s.get(i).equals(ab[0])
                            && s.get(i + 1).equals(ab[1])) {
                        t.add(joined);
                        i++;
                    } else {
                        t.add(s.get(i));
                    }
                }
                next.merge(t, e.getValue(), Integer::sum);
            }
            words = next;
        }
        return new Result(vocab, mergeList);
    }
}
