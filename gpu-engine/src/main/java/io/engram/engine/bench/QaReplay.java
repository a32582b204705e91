package io.engram.engine.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.engram.engine.generate.SamplingOptions;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Transformer;
import io.engram.engine.session.PromptFormat;
import io.engram.engine.session.SessionEngine;
import io.engram.engine.tokenizer.Tokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.zip.GZIPInputStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Replays the question-answering evaluation that training/engram_train/evaluate.py ran with PyTorch
 * ({@code eval_examples.jsonl[.gz]}: content pieces, question, expected answer, the reference's greedy answer) through
 * our engine: each example's pieces are ingested as content events of a fresh session with the given memory policy,
 * the question is asked, and the greedy answer is compared with the expected one and with the reference's. Rows per
 * policy, skill and length: our accuracy, the reference's accuracy, and how often the two greedy answers agree.
 */
public final class QaReplay {
    private static final Logger LOG = LoggerFactory.getLogger(QaReplay.class);

    /**
     * One evaluation example as evaluate.py wrote it. {@code tokens}: the prompt's length (content + question) as the
     * Python side tokenized it; {@code values}: what a right answer must hold (answers restate the question's key and
     * copy the fact, "The vault code of the old customs house was 7481."; a summary holds every fact's value), or the
     * refusal alone when nothing should be found.
     */
    public record Example(
            String kind,
            int length,
            int tokens,
            List<String> pieces,
            String question,
            String expected,
            List<String> values,
            String referenceAnswer,
            int ownFrom,
            int ownTo) {

        /**
         * An example as evaluated: all its pieces are its own. ({@code ownFrom..ownTo}: the pieces that are the
         * example's own text, the rest being filler {@link #padded} added.)
         */
        public Example(
                String kind,
                int length,
                int tokens,
                List<String> pieces,
                String question,
                String expected,
                List<String> values,
                String referenceAnswer) {
            this(kind, length, tokens, pieces, question, expected, values, referenceAnswer, 0, pieces.size());
        }

        /** evaluate.py's rule: the refusal exactly when one is expected, else an answer that holds every value. */
        public boolean correct(String answer) {
            if (answer == null) {
                return false;
            }
            String a = answer.strip();
            if (values.equals(List.of(REFUSAL))) {
                return a.equals(REFUSAL);
            }
            return !a.startsWith(REFUSAL) && values.stream().allMatch(a::contains);
        }
    }

    /** The answer the model is trained to give when the memory does not hold what is asked. */
    public static final String REFUSAL = "I don't know.";

    /**
     * Results of one policy on one skill at one length.
     *
     * @param ownAttended share of the examples whose fact (a piece of their own text holding an expected value) was
     *     among the memory spans the answer attended to in every layer ({@link io.engram.engine.session.Reply#retrieved}:
     *     retrieved units, init tokens, local window): whether the policy brought the fact to the answer; 0 for refusals
     * @param peakEngineBytes the most KV bytes the engine held for one example (after each event)
     * @param prefillMsPerToken wall time of ingesting the examples' events per token ingested
     * @param decodeMsPerToken the answers' decode time per generated token
     */
    public record Row(
            String policy,
            String kind,
            int length,
            int examples,
            double accuracy,
            double referenceAccuracy,
            double agreement,
            double msPerExample,
            double ownAttended,
            long peakEngineBytes,
            double prefillMsPerToken,
            double decodeMsPerToken) {}

    /**
     * One untimed answer over a few events of {@code ex}, so that the first cell's times do not include compiling the
     * answer path (a handful of answer tokens per example would otherwise be timed mostly cold).
     */
    private static void warmUp(SessionEngine engine, Example ex, int maxNewTokens) {
        KvCache memory = engine.newMemory();
        for (int i = 0; i < Math.min(4, ex.pieces().size()); i++) {
            engine.ingest(memory, ex.pieces().get(i), i);
        }
        engine.answer(memory, ex.question(), SamplingOptions.greedy(maxNewTokens), (id, piece, logProb) -> {});
    }

    /** What one policy's examples of one skill and length add up to. */
    private static final class Cell {
        int ok;
        int refOk;
        int agree;
        int n;
        int own;
        long nanos;
        long ingestNanos;
        long ingestTokens;
        long decodeNanos;
        long decodeTokens;
        long peakBytes;
    }

    private QaReplay() {}

    public static List<Example> read(Path file) {
        ObjectMapper json = new ObjectMapper();
        List<Example> out = new ArrayList<>();
        try (InputStream raw = Files.newInputStream(file);
                InputStream in = file.toString().endsWith(".gz") ? new GZIPInputStream(raw) : raw;
                BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String line;
            int n = 0;
            while ((line = r.readLine()) != null) {
                n++;
                if (line.isBlank()) {
                    continue;
                }
                JsonNode o = json.readTree(line);
                List<String> pieces = new ArrayList<>();
                o.path("pieces").forEach(p -> pieces.add(p.asText()));
                if (pieces.isEmpty() || !o.hasNonNull("question") || !o.hasNonNull("expected")) {
                    throw new IllegalArgumentException(
                            "%s line %d: needs pieces, question and expected".formatted(file, n));
                }
                out.add(new Example(
                        o.path("kind").asText("?"),
                        o.path("length").asInt(0),
                        o.path("tokens").asInt(-1),
                        pieces,
                        o.get("question").asText(),
                        o.get("expected").asText(),
                        values(o),
                        o.path("answer").asText(null)));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + file, e);
        }
        return out;
    }

    /** "value" as evaluate.py writes it: one string, a list (a summary's facts), or absent (older files: "expected"). */
    private static List<String> values(JsonNode o) {
        JsonNode v = o.path("value");
        if (v.isArray()) {
            List<String> out = new ArrayList<>();
            v.forEach(x -> out.add(x.asText()));
            return List.copyOf(out);
        }
        return List.of(v.isMissingNode() || v.isNull() ? o.get("expected").asText() : v.asText());
    }

    /**
     * The examples of {@code skills} (all when empty), at most {@code perCell} per skill and length (0: all), each
     * padded to about {@code targetTokens} tokens with held-out filler: pieces of the other examples that hold no
     * example's value (prose the model never trained on), in an order drawn from {@code seed}. The example's own pieces
     * sit at depth 0, 0.5 or 1 of the filler in turn (0: first, 1: just before the question). {@code targetTokens} 0
     * keeps the examples as they are.
     */
    public static List<Example> padded(
            List<Example> examples,
            List<String> skills,
            int perCell,
            int targetTokens,
            Tokenizer tokenizer,
            long seed) {
        Filler fill = targetTokens > 0 ? Filler.of(examples, tokenizer) : null;
        List<String> filler = fill == null ? List.of() : fill.pieces();
        List<Integer> fillerTokens = fill == null ? List.of() : fill.tokens();
        java.util.Random r = new java.util.Random(seed);
        Map<String, Integer> taken = new java.util.HashMap<>();
        List<Example> out = new ArrayList<>();
        for (Example e : examples) {
            String cell = e.kind() + "@" + e.length();
            int n = taken.merge(cell, 1, Integer::sum);
            if ((!skills.isEmpty() && !skills.contains(e.kind())) || (perCell > 0 && n > perCell)) {
                continue;
            }
            if (targetTokens <= 0) {
                out.add(e);
                continue;
            }
            int own = Math.max(0, e.tokens());
            List<String> pad = new ArrayList<>();
            int start = r.nextInt(filler.size());
            for (int i = 0, total = own; total < targetTokens; i++) {
                int at = (start + i) % filler.size();
                pad.add(filler.get(at));
                total += fillerTokens.get(at);
            }
            int depth = new int[] {0, pad.size() / 2, pad.size()}[(n - 1) % 3];
            List<String> pieces = new ArrayList<>(pad.subList(0, depth));
            pieces.addAll(e.pieces());
            pieces.addAll(pad.subList(depth, pad.size()));
            out.add(new Example(
                    e.kind(),
                    targetTokens,
                    -1,
                    List.copyOf(pieces),
                    e.question(),
                    e.expected(),
                    e.values(),
                    e.referenceAnswer(),
                    depth,
                    depth + e.pieces().size()));
        }
        return out;
    }

    /**
     * Held-out filler: the distinct pieces of {@code examples} that hold no example's value (prose the model never
     * trained on), in file order, with their token counts as content events (text and separator).
     */
    record Filler(List<String> pieces, List<Integer> tokens) {
        static Filler of(List<Example> examples, Tokenizer tokenizer) {
            java.util.Set<String> values = new java.util.HashSet<>();
            examples.forEach(e -> values.addAll(e.values()));
            values.remove(REFUSAL);
            List<String> filler = new ArrayList<>();
            List<Integer> tokens = new ArrayList<>();
            java.util.Set<String> seen = new java.util.HashSet<>();
            for (Example e : examples) {
                for (String piece : e.pieces()) {
                    if (values.stream().noneMatch(piece::contains) && seen.add(piece)) {
                        filler.add(piece);
                        tokens.add(tokenizer.encode(piece, false).length + 2);
                    }
                }
            }
            if (filler.isEmpty()) {
                throw new IllegalArgumentException("no filler: every piece of the examples holds a value");
            }
            return new Filler(List.copyOf(filler), List.copyOf(tokens));
        }
    }

    /** Whether {@code reply} attended to one of {@code facts} (event indices) in every layer. */
    static boolean attendedInEveryLayer(
            io.engram.engine.session.Reply reply, java.util.Set<Integer> facts, int layers) {
        return reply.retrieved().stream()
                .filter(r -> r.layers() >= layers)
                .flatMap(r -> r.eventIndices().stream())
                .anyMatch(facts::contains);
    }

    /** The event indices among {@code [from, to)} of {@code pieces} that hold one of {@code values} (not the refusal). */
    static java.util.Set<Integer> factPieces(List<String> pieces, int from, int to, List<String> values) {
        java.util.Set<Integer> facts = new java.util.HashSet<>();
        for (int i = from; i < to; i++) {
            String piece = pieces.get(i);
            if (values.stream().anyMatch(v -> !v.equals(REFUSAL) && piece.contains(v))) {
                facts.add(i);
            }
        }
        return facts;
    }

    /**
     * Runs every example under every policy. {@code progress} is told after each example.
     */
    public static List<Row> run(
            Transformer model,
            Tokenizer tokenizer,
            List<Example> examples,
            Map<String, MemoryPolicy> policies,
            int maxNewTokens,
            IntConsumer progress) {
        List<Row> rows = new ArrayList<>();
        int done = 0;
        for (Map.Entry<String, MemoryPolicy> p : policies.entrySet()) {
            SessionEngine engine = new SessionEngine(model, tokenizer, p.getValue(), PromptFormat.PLAIN);
            if (!examples.isEmpty()) {
                warmUp(engine, examples.getFirst(), maxNewTokens);
            }
            Map<String, Cell> cells = new LinkedHashMap<>();
            for (Example ex : examples) {
                Cell c = cells.computeIfAbsent(ex.kind() + "@" + ex.length(), k -> new Cell());
                long t0 = System.nanoTime();
                KvCache memory = engine.newMemory();
                for (int i = 0; i < ex.pieces().size(); i++) {
                    c.ingestTokens +=
                            engine.ingest(memory, ex.pieces().get(i), i).tokens();
                    c.peakBytes = Math.max(c.peakBytes, memory.residentBytes());
                }
                c.ingestNanos += System.nanoTime() - t0;
                var reply = engine.answer(
                        memory, ex.question(), SamplingOptions.greedy(maxNewTokens), (id, piece, logProb) -> {});
                c.decodeNanos += reply.generation().decodeNanos();
                c.decodeTokens += reply.generation().tokens().length;
                String answer = reply.text().strip();
                boolean seen = attendedInEveryLayer(
                        reply,
                        factPieces(ex.pieces(), ex.ownFrom(), ex.ownTo(), ex.values()),
                        model.config().layers());
                c.own += seen ? 1 : 0;
                LOG.debug(
                        "{} {}@{}: correct {}, seen {}, answer: {}",
                        p.getKey(),
                        ex.kind(),
                        ex.length(),
                        ex.correct(answer),
                        seen,
                        answer);
                c.ok += ex.correct(answer) ? 1 : 0;
                c.refOk += ex.correct(ex.referenceAnswer()) ? 1 : 0;
                c.agree += answer.equals(ex.referenceAnswer()) ? 1 : 0;
                c.n++;
                c.nanos += System.nanoTime() - t0;
                progress.accept(++done);
            }
            for (Map.Entry<String, Cell> e : cells.entrySet()) {
                Cell c = e.getValue();
                String[] kl = e.getKey().split("@");
                rows.add(new Row(
                        p.getKey(),
                        kl[0],
                        Integer.parseInt(kl[1]),
                        c.n,
                        (double) c.ok / c.n,
                        (double) c.refOk / c.n,
                        (double) c.agree / c.n,
                        c.nanos / 1e6 / c.n,
                        (double) c.own / c.n,
                        c.peakBytes,
                        c.ingestNanos / 1e6 / Math.max(1, c.ingestTokens),
                        c.decodeNanos / 1e6 / Math.max(1, c.decodeTokens)));
            }
        }
        return rows;
    }
}
