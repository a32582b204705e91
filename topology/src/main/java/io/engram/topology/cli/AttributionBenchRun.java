package io.engram.topology.cli;

import io.engram.engine.backend.Backend;
import io.engram.engine.backend.Backends;
import io.engram.engine.bench.AttributionBench;
import io.engram.engine.memory.MemorySpec;
import io.engram.engine.memory.duo.HeadPattern;
import io.engram.engine.model.Model;
import io.engram.engine.session.Engine;
import io.engram.engine.session.SessionEngine;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code engram bench attribution}: both attribution tiers on generated sessions with known support (see
 * {@link AttributionBench}), one session per length, as a table of precision@k, recall@k and time per attribution.
 */
final class AttributionBenchRun {
    private AttributionBenchRun() {}

    record Params(
            Path model,
            int threads,
            List<Integer> lengths,
            int needles,
            int copies,
            int wordsPerEvent,
            int segmentWords,
            AttributionBench.Settings settings,
            MemorySpec memory,
            Path heads,
            double headSparsity,
            long seed,
            int blockSize,
            Path examples,
            int facts,
            List<String> skills) {}

    static int run(CliContext ctx, Params p) {
        PrintWriter out = ctx.out();
        Engine.Spec spec = Engine.Spec.tool(
                        p.model(), new Backends.DeviceSettings(Backends.Device.CPU, 0), p.threads(), false)
                .withBlockSize(p.blockSize())
                .withMemory(
                        p.memory(),
                        p.examples() == null ? Engine.Spec.Format.CONTINUATION : Engine.Spec.Format.PLAIN,
                        p.segmentWords())
                .withHeads(
                        p.heads() == null
                                ? null
                                : new Engine.Spec.Heads(p.heads().toString(), p.headSparsity()));
        Engine opened;
        try {
            opened = Engine.open(spec);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCode.INVALID_INPUT, e.getMessage());
        }
        try (Engine e = opened) {
            Model m = e.model();
            Backend backend = e.backend();
            SessionEngine engine = e.session();
            HeadPattern heads = engine.retrievalHeads();
            AttributionBench.Settings s = p.settings();
            out.printf(
                    "machine: %d cpus, JDK %s, %s; model %s (%d layers, %d KV heads, trained context %d)%n",
                    Runtime.getRuntime().availableProcessors(),
                    Runtime.version(),
                    backend.describe(),
                    p.model().getFileName(),
                    m.config().layers(),
                    m.config().kvHeads(),
                    m.config().maxPositions());
            out.printf(
                    "memory policy: %s; fast tier counts %s%n",
                    p.memory().describe(m.config()),
                    heads == null
                            ? "every head"
                            : "%.0f%% of heads (retrieval heads)".formatted(100 * heads.retrievalShare()));
            String precise = s.precise()
                    ? "%d candidates, %d tokens, %d permutations"
                            .formatted(s.maxCandidates(), s.maxContextTokens(), s.permutations())
                    : "off";
            List<io.engram.engine.bench.QaReplay.Example> examples = null;
            if (p.examples() != null) {
                examples = MemoryBenchRun.readExamples(p.examples());
                out.printf(
                        "task: %d held-out facts of %s from %s in held-out filler, asked in their held-out phrasings "
                                + "(question-answer format), the expected answer traced; support: the segments holding "
                                + "the value; segments of %d words; top-%d; precise: %s%n",
                        p.facts(),
                        p.skills().isEmpty() ? "any skill" : p.skills(),
                        p.examples().getFileName(),
                        p.segmentWords(),
                        s.topK(),
                        precise);
            } else {
                out.printf(
                        "task: %d needles x %d copies in events of %d words, segments of %d words; top-%d; precise: %s%n",
                        p.needles(), p.copies(), p.wordsPerEvent(), p.segmentWords(), s.topK(), precise);
            }
            out.flush();
            out.printf(
                    "%8s %-8s %9s %6s %6s %10s %11s %10s%n",
                    "tokens", "tier", "questions", "P@k", "R@k", "ms/attr", "values/attr", "candidates");
            for (int length : p.lengths()) {
                List<AttributionBench.Row> rows;
                try (Progress progress = Progress.forContext(ctx, "bench attribution " + length, "steps", null)) {
                    long[] n = {0};
                    AttributionBench bench = new AttributionBench(engine, s);
                    java.util.function.Consumer<String> step = line -> progress.update(++n[0], 0, 0);
                    if (examples != null) {
                        io.engram.engine.bench.QaStream.Stream stream;
                        try {
                            stream = io.engram.engine.bench.QaStream.build(
                                    examples, p.skills(), p.facts(), length, engine.tokenizer(), p.seed() + length);
                        } catch (IllegalArgumentException ex) {
                            throw new CliException(ExitCode.INVALID_INPUT, "bench attribution: " + ex.getMessage());
                        }
                        rows = bench.run(
                                io.engram.engine.bench.AttributionTasks.fromFacts(stream), p.seed() + length, step);
                    } else {
                        rows = bench.run(length, p.wordsPerEvent(), p.needles(), p.copies(), p.seed() + length, step);
                    }
                }
                for (AttributionBench.Row r : rows) {
                    out.printf(
                            Locale.ROOT,
                            "%8d %-8s %9d %6.2f %6.2f %10.0f %11.1f %10.1f%n",
                            r.tokens(),
                            r.tier(),
                            r.questions(),
                            r.precision(),
                            r.recall(),
                            r.msPerAttribution(),
                            r.valueCallsPerAttribution(),
                            r.candidates());
                }
                out.flush();
            }
            out.printf(
                    "P@k: supporting segments among those returned; R@k: supporting segments found; ms/attr for precise "
                            + "includes its fast tier. With %d supporting segment(s) per question the best P@%d is %.2f.%n",
                    examples != null ? 1 : p.copies(),
                    s.topK(),
                    Math.min(1.0, (examples != null ? 1 : p.copies()) / (double) s.topK()));
            out.flush();
            return ExitCode.OK.code();
        }
    }
}
