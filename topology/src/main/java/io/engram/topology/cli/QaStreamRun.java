package io.engram.topology.cli;

import io.engram.engine.bench.QaReplay;
import io.engram.engine.bench.QaStream;
import io.engram.engine.session.Engine;
import io.engram.engine.tokenizer.Tokenizer;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code bench qa --stream N --facts F}: one stream of held-out filler with F evaluation examples planted at spread
 * depths ({@link QaStream}), read once per policy, every question asked after it. Prints one row per fact and policy and
 * a summary per policy (accuracy, fact seen, wall time of reading the stream, engine and store MiB).
 */
final class QaStreamRun {

    /** Tokens of the stream, facts planted, their skills (empty: any answerable one). */
    record StreamShape(long tokens, int facts, List<String> skills) {}

    private QaStreamRun() {}

    static int run(CliContext ctx, MemoryBenchRun.QaInputs in, StreamShape shape) {
        PrintWriter out = ctx.out();
        List<QaReplay.Example> examples = in.examples();
        MemoryBenchRun.Specs memory = in.memory();
        Path modelPath = in.model();
        try (Engine engine = in.open()) {
            Tokenizer tok = engine.session().tokenizer();
            QaStream.Stream stream;
            try {
                stream = QaStream.build(examples, shape.skills(), shape.facts(), shape.tokens(), tok, 1);
            } catch (IllegalArgumentException e) {
                throw new CliException(ExitCode.INVALID_INPUT, "bench qa --stream: " + e.getMessage());
            }
            out.printf(
                    Locale.ROOT,
                    "model %s; one stream of %,d tokens (%,d events) of held-out filler from %s with %d facts planted at "
                            + "depths (i + 0.5) / %d, each asked once after the stream%n",
                    modelPath.getFileName(),
                    stream.tokens(),
                    stream.events().size(),
                    in.examplesFile().getFileName(),
                    stream.facts().size(),
                    stream.facts().size());
            out.printf(
                    "%-8s %6s %-9s %-8s %-5s %9s  %s%n", "policy", "depth", "skill", "correct", "seen", "ms", "answer");
            out.flush();
            for (String name : in.policies()) {
                var candidate = MemoryBenchRun.candidate(name, memory, engine.config(), modelPath);
                out.printf("%s: %s%n", candidate.name(), MemoryBenchRun.describe(name, memory, engine.config()));
                QaStream.Result r;
                try (Progress progress = Progress.forContext(ctx, "bench qa --stream " + name, "tokens", null)) {
                    r = QaStream.run(
                            engine.transformer(),
                            tok,
                            stream,
                            candidate.name(),
                            candidate.policy(),
                            in.maxNew(),
                            read -> progress.update(read, stream.tokens(), 0));
                }
                for (QaStream.Answer a : r.answers()) {
                    out.printf(
                            Locale.ROOT,
                            "%-8s %6.3f %-9s %-8s %-5s %9.1f  %s%n",
                            r.policy(),
                            a.fact().depth(),
                            a.fact().example().kind(),
                            a.correct() ? "yes" : "no",
                            a.seen() ? "yes" : "no",
                            a.millis(),
                            a.text().replace('\n', ' '));
                }
                out.printf(
                        Locale.ROOT,
                        "%s: %d of %d facts answered (%.2f), fact seen in every layer %.2f; stream read in %.1f s "
                                + "(%.3f ms/token); engine KV peak %.2f MiB, store %.1f MiB%n",
                        r.policy(),
                        r.answers().stream().filter(QaStream.Answer::correct).count(),
                        r.answers().size(),
                        r.accuracy(),
                        r.seen(),
                        r.ingestSeconds(),
                        r.ingestSeconds() * 1e3 / Math.max(1, r.tokens()),
                        r.peakEngineBytes() / 1048576.0,
                        r.storeBytes() / 1048576.0);
                out.flush();
            }
            out.println(
                    "correct: the greedy answer holds the expected value; seen: the piece holding it was among the"
                            + " memory spans the answer attended to in every layer (retrieved units, init tokens, local window).");
            out.flush();
            return ExitCode.OK.code();
        }
    }
}
