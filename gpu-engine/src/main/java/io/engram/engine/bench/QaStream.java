package io.engram.engine.bench;

import io.engram.engine.bench.QaReplay.Example;
import io.engram.engine.generate.SamplingOptions;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Transformer;
import io.engram.engine.session.PromptFormat;
import io.engram.engine.session.Reply;
import io.engram.engine.session.SessionEngine;
import io.engram.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongConsumer;

/**
 * One long stream with many facts planted at spread depths, each asked once after the whole stream is read: what a
 * session that has read a million tokens answers about any part of it. The facts are held-out evaluation examples (their
 * own text, as {@link QaReplay} replays them), the rest of the stream is held-out filler ({@link QaReplay.Filler},
 * repeated as often as the length needs); every question is asked of the same memory, after the last event.
 */
public final class QaStream {

    /**
     * A fact in the stream: its example, the event indices of its own text and the relative depth of its first event.
     */
    public record Planted(Example example, int firstEvent, int endEvent, double depth) {}

    /** The stream's events in order, the facts planted in it, and about how many tokens it is (each event alone). */
    public record Stream(List<String> events, List<Planted> facts, long tokens) {}

    /** One question's outcome. {@code seen}: its fact's text was attended to in every layer. */
    public record Answer(Planted fact, String text, boolean correct, boolean seen, double millis) {}

    /**
     * One policy over the stream: the answers, the wall time of reading the stream, the engine's peak resident KV
     * bytes and the bytes of offloaded memory (the unit store) at the end.
     */
    public record Result(
            String policy,
            List<Answer> answers,
            double ingestSeconds,
            long tokens,
            long peakEngineBytes,
            long storeBytes) {

        public double accuracy() {
            return answers.stream().filter(Answer::correct).count() / (double) Math.max(1, answers.size());
        }

        public double seen() {
            return answers.stream().filter(Answer::seen).count() / (double) Math.max(1, answers.size());
        }
    }

    private QaStream() {}

    /**
     * Picks {@code facts} examples of {@code skills} (all answerable skills when empty; shortest examples first,
     * taking the skills in turn) whose questions each have one answer in the stream ({@link Keys}), and plants them in
     * held-out filler of about {@code targetTokens} tokens, fact i at depth (i + 0.5) / facts. Filler pieces that name
     * a planted fact's key (another example's fact about the same thing, "the gate code of the rusty carousel") are left
     * out: they would give its question a second answer.
     *
     * @throws IllegalArgumentException when fewer than {@code facts} such facts can be drawn
     */
    public static Stream build(
            List<Example> examples, List<String> skills, int facts, long targetTokens, Tokenizer tokenizer, long seed) {
        Map<String, List<Example>> bySkill = new LinkedHashMap<>();
        examples.stream()
                .filter(e -> skills.isEmpty() ? isFact(e) : skills.contains(e.kind()) && isFact(e))
                .sorted(java.util.Comparator.comparingInt(Example::length))
                .forEach(e -> bySkill.computeIfAbsent(e.kind(), k -> new ArrayList<>())
                        .add(e));
        Keys keys = new Keys(examples);
        List<Example> chosen = new ArrayList<>();
        List<java.util.Iterator<Example>> turns =
                bySkill.values().stream().map(List::iterator).toList();
        for (boolean more = true; chosen.size() < facts && more; ) {
            more = false;
            for (var it : turns) {
                while (it.hasNext() && chosen.size() < facts) {
                    Example e = it.next();
                    more = true;
                    if (keys.unambiguous(e, chosen)) {
                        chosen.add(e);
                        break;
                    }
                }
            }
        }
        if (chosen.size() < facts) {
            throw new IllegalArgumentException(
                    "only %d facts of %s whose questions have one answer in a stream, %d asked for"
                            .formatted(chosen.size(), skills.isEmpty() ? "any skill" : skills, facts));
        }
        QaReplay.Filler filler = keys.without(QaReplay.Filler.of(examples, tokenizer), chosen);
        long own = 0;
        for (Example e : chosen) {
            for (String p : e.pieces()) {
                own += tokenizer.encode(p, false).length + 2;
            }
        }
        List<String> fill = new ArrayList<>();
        int at = new java.util.Random(seed).nextInt(filler.pieces().size());
        long tokens = own; // every event's tokens: the facts' and the filler's
        for (; tokens < targetTokens; at = (at + 1) % filler.pieces().size()) {
            fill.add(filler.pieces().get(at));
            tokens += filler.tokens().get(at);
        }
        List<String> events = new ArrayList<>();
        List<Planted> planted = new ArrayList<>();
        int used = 0;
        for (int i = 0; i < chosen.size(); i++) {
            int upTo = (int) Math.round((i + 0.5) / chosen.size() * fill.size());
            events.addAll(fill.subList(used, upTo));
            used = upTo;
            Example e = chosen.get(i);
            planted.add(new Planted(e, events.size(), events.size() + e.pieces().size(), (i + 0.5) / chosen.size()));
            events.addAll(e.pieces());
        }
        events.addAll(fill.subList(used, fill.size()));
        return new Stream(List.copyOf(events), List.copyOf(planted), tokens);
    }

    private static boolean isFact(Example e) {
        return !e.values().contains(QaReplay.REFUSAL) && e.values().size() == 1;
    }

    /**
     * Reads {@code stream} into a fresh memory of {@code policy}, then asks every planted fact's question (greedy, at
     * most {@code maxNewTokens}). {@code progress} is told the tokens read so far after each event.
     */
    public static Result run(
            Transformer model,
            Tokenizer tokenizer,
            Stream stream,
            String name,
            MemoryPolicy policy,
            int maxNewTokens,
            LongConsumer progress) {
        SessionEngine engine = new SessionEngine(model, tokenizer, policy, PromptFormat.PLAIN);
        KvCache memory = engine.newMemory();
        long t0 = System.nanoTime();
        long read = 0;
        long peak = 0;
        for (int i = 0; i < stream.events().size(); i++) {
            read += engine.ingest(memory, stream.events().get(i), i).tokens();
            peak = Math.max(peak, memory.residentBytes());
            progress.accept(read);
        }
        double ingest = (System.nanoTime() - t0) / 1e9;
        List<Answer> answers = new ArrayList<>();
        for (Planted f : stream.facts()) {
            long q0 = System.nanoTime();
            Reply reply = engine.answer(
                    memory, f.example().question(), SamplingOptions.greedy(maxNewTokens), (id, piece, lp) -> {});
            String text = reply.text().strip();
            peak = Math.max(peak, memory.residentBytes());
            Set<Integer> facts = QaReplay.factPieces(
                    stream.events(), f.firstEvent(), f.endEvent(), f.example().values());
            answers.add(new Answer(
                    f,
                    text,
                    f.example().correct(text),
                    QaReplay.attendedInEveryLayer(reply, facts, model.config().layers()),
                    (System.nanoTime() - q0) / 1e6));
        }
        return new Result(name, answers, ingest, read, peak, memory.unitStore().bytes());
    }
}
