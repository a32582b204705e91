package io.engram.topology.cli;

import io.engram.engine.attribution.Segmenter;
import io.engram.engine.backend.Backends;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.memory.MemorySpec;
import io.engram.engine.session.Engine;
import io.engram.state.bench.RestartBench;
import io.engram.state.codec.KvDType;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * {@code engram bench restart}: a follow-up question on a session of each length, answered after a restart from its
 * stored memory and after prefilling its text again (see {@link RestartBench}), with the speed-up.
 */
final class RestartBenchRun {
    private RestartBenchRun() {}

    static final String FACT = "The vault code of the old customs house was 7481.";
    static final String QUESTION = "What is the vault code of the old customs house?";

    record Params(
            Path model,
            int threads,
            List<Integer> lengths,
            MemorySpec memory,
            KvDType storage,
            int blockSize,
            int wordsPerEvent,
            int maxNew) {}

    static int run(CliContext ctx, Params p) {
        PrintWriter out = ctx.out();
        Engine.Spec spec = new Engine.Spec(
                p.model().toString(),
                new Backends.DeviceSettings(Backends.Device.CPU, 0),
                0,
                p.threads(),
                p.blockSize(),
                EngineSettings.DEFAULT_PREFILL_CHUNK,
                p.memory(),
                Engine.Spec.Format.PLAIN,
                Segmenter.DEFAULT_WORDS);
        try (Engine engine = Engine.open(spec)) {
            out.printf(
                    "machine: %d cpus, JDK %s, %s; model %s; memory policy %s; stored blocks %s, %d tokens each%n",
                    Runtime.getRuntime().availableProcessors(),
                    Runtime.version(),
                    engine.backend().describe(),
                    p.model().getFileName(),
                    p.memory().describe(engine.config()),
                    p.storage(),
                    p.blockSize());
            out.printf(
                    "%9s %7s %10s %11s %10s %11s %10s %8s %9s %9s %11s %10s  %s%n",
                    "tokens",
                    "events",
                    "store MiB",
                    "restore ms",
                    "answer ms",
                    "prefill ms",
                    "answer ms",
                    "speedup",
                    "same/hot",
                    "same/pre",
                    "first ev ms",
                    "last ev ms",
                    "answer (restored)");
            out.flush();
            for (int length : p.lengths()) {
                List<String> events = RestartBench.events(engine.session(), length, p.wordsPerEvent(), FACT, 0.5);
                Path dir = Files.createTempDirectory("engram-restart-bench");
                RestartBench.Row r;
                try (Progress progress = Progress.forContext(ctx, "bench restart " + length, "steps", null)) {
                    long[] n = {0};
                    r = RestartBench.run(
                            engine.session(),
                            engine.backend(),
                            p.storage(),
                            p.model().getFileName().toString(),
                            p.blockSize(),
                            events,
                            QUESTION,
                            p.maxNew(),
                            dir,
                            line -> progress.update(++n[0], 0, 0));
                } finally {
                    delete(dir);
                }
                out.printf(
                        Locale.ROOT,
                        "%9d %7d %10.1f %11.0f %10.0f %11.0f %10.0f %7.1fx %9s %9s %11.1f %10.1f  %s%n",
                        r.tokens(),
                        r.events(),
                        r.storedMiB(),
                        r.restoreMs(),
                        r.restoredAnswerMs(),
                        r.prefillMs(),
                        r.prefilledAnswerMs(),
                        r.speedup(),
                        r.sameAsHot() ? "yes" : "NO",
                        r.sameAsPrefilled() ? "yes" : "no",
                        r.firstEventsMs(),
                        r.lastEventsMs(),
                        clip(r.answer()));
                out.flush();
            }
            out.printf(
                    "restore: read and checksum every stored block (decoded whole with full attention; with a policy "
                            + "that offloads memory only its tokens and provenance, its layers when a step needs them), restore "
                            + "the policy state; speedup: (prefill + answer) / (restore + answer); same/hot: the restored "
                            + "answer equals the never-stopped memory's; same/pre: the re-prefilled one does (%s blocks are "
                            + "rounded when stored); first/last ev ms: ingesting and storing one of the session's first/last %d "
                            + "events (prefill, encode, write, index).%n",
                    p.storage(), RestartBench.EDGE);
            out.flush();
            return ExitCode.OK.code();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The answer on one line, at most 48 characters. */
    static String clip(String answer) {
        String one = answer.strip().replaceAll("\\s+", " ");
        return one.length() <= 48 ? one : one.substring(0, 47) + "…";
    }

    private static void delete(Path dir) throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            for (Path f : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(f);
            }
        }
    }
}
