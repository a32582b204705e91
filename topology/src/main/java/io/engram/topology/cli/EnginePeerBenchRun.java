package io.engram.topology.cli;

import io.engram.engine.backend.Backends;
import io.engram.engine.bench.EngineBench;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.gguf.LlamaCppReference;
import io.engram.engine.model.gguf.TinyGgufModels;
import io.engram.engine.session.Engine;
import io.engram.engine.tensor.DType;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * {@code engram bench engine --peer llama.cpp}: our CPU engine and llama.cpp (de.kherud:llama, in this process) on the
 * same GGUF file with the same thread count, prefill and greedy decode tokens/s, median of the runs with their range,
 * and the ratio. llama.cpp keeps its default F16 KV cache; its prefill and its decode steps after it are timed apart
 * in one greedy run ({@link LlamaCppReference#timedGreedy}), so both sides time decode steps after an equal prefill.
 */
final class EnginePeerBenchRun {

    record Params(Path model, List<Integer> threads, List<Integer> contexts, int decodeSteps, int runs) {}

    /** One phase at one thread count and context: both engines' runs in tokens/s. */
    record Row(String phase, int threads, int context, double[] ours, double[] peer) {
        double ratio() {
            return median(ours) / median(peer);
        }
    }

    private EnginePeerBenchRun() {}

    /**
     * Random Llamas the bench writes as GGUF itself ({@code --model synthetic-90m}): shapes of real models at that size
     * (GQA 4:1, SwiGLU at 2.75x; synthetic-1b has TinyLlama-1.1B's layer shapes and 22 layers, 1.0B parameters without
     * its 32K vocabulary), a 512-token vocabulary, weights from a fixed seed.
     */
    static final java.util.Map<String, TinyGgufModels.Spec> SYNTHETIC = java.util.Map.of(
            "synthetic-90m",
                    new TinyGgufModels.Spec(
                            "synthetic-llama-90m",
                            io.engram.engine.config.Architecture.LLAMA,
                            1024,
                            8,
                            16,
                            4,
                            2816,
                            8192,
                            false,
                            20261206L),
            "synthetic-1b",
                    new TinyGgufModels.Spec(
                            "synthetic-llama-1b",
                            io.engram.engine.config.Architecture.LLAMA,
                            2048,
                            22,
                            32,
                            8,
                            5632,
                            8192,
                            false,
                            20261208L),
            "synthetic-25m",
                    new TinyGgufModels.Spec(
                            "synthetic-llama-25m",
                            io.engram.engine.config.Architecture.LLAMA,
                            512,
                            8,
                            8,
                            2,
                            1408,
                            8192,
                            false,
                            20261207L));

    /**
     * The GGUF files to compare on: {@code model} itself (or the one in its folder), or for a synthetic name one file
     * per storage type, written under {@code dir}.
     */
    static List<Path> ggufs(Path model, List<DType> types, Path dir) {
        TinyGgufModels.Spec spec = SYNTHETIC.get(model.toString());
        if (spec == null) {
            return List.of(gguf(model));
        }
        try {
            Files.createDirectories(dir);
            return List.copyOf(TinyGgufModels.writeVariants(spec, dir, types.toArray(DType[]::new))
                    .values());
        } catch (IOException e) {
            throw new CliException(
                    ExitCode.INVALID_INPUT, "cannot write the synthetic model under " + dir + ": " + e.getMessage());
        }
    }

    /** The GGUF both engines load: the file itself, or the one .gguf in a model folder. */
    static Path gguf(Path model) {
        if (Files.isRegularFile(model) && model.toString().endsWith(".gguf")) {
            return model;
        }
        if (Files.isDirectory(model)) {
            try (Stream<Path> files = Files.list(model)) {
                List<Path> found = files.filter(p -> p.toString().endsWith(".gguf"))
                        .sorted()
                        .toList();
                if (found.size() == 1) {
                    return found.getFirst();
                }
                throw new CliException(
                        ExitCode.INVALID_INPUT,
                        "bench engine --peer llama.cpp needs one GGUF file; %s holds %d".formatted(model, found.size())
                                + " (give the .gguf file as --model)");
            } catch (IOException e) {
                throw new CliException(ExitCode.INVALID_INPUT, "cannot list " + model + ": " + e.getMessage());
            }
        }
        throw new CliException(
                ExitCode.INVALID_INPUT,
                "bench engine --peer llama.cpp needs a .gguf file, a folder holding" + " one, or one of "
                        + new java.util.TreeSet<>(SYNTHETIC.keySet()) + "; got " + model);
    }

    /** How long our engine runs before its measured runs, per thread count and context. */
    static final long WARM_UP_NANOS = 3_000_000_000L;

    static List<Row> measure(Params p, Path gguf) {
        loadPeerLibrary();
        List<Row> rows = new ArrayList<>();
        for (int t : p.threads()) {
            try (Engine engine = Engine.open(
                    Engine.Spec.tool(gguf, new Backends.DeviceSettings(Backends.Device.CPU, 0), t, false))) {
                for (int ctx : p.contexts()) {
                    if (ctx + p.decodeSteps() > engine.config().maxPositions()) {
                        continue;
                    }
                    double[][] ours = ours(engine.transformer(), ctx, p);
                    double[][] peer = peer(gguf, t, ctx, p, engine.config().vocabSize());
                    rows.add(new Row("prefill", t, ctx, ours[0], peer[0]));
                    rows.add(new Row("decode", t, ctx, ours[1], peer[1]));
                }
            }
        }
        return rows;
    }

    /**
     * Loads the binding's native library now, with stdout pointed at stderr: the binding announces the extraction on
     * stdout, where the bench's table goes.
     */
    private static void loadPeerLibrary() {
        java.io.PrintStream stdout = System.out;
        System.setOut(System.err);
        try {
            Class.forName("de.kherud.llama.LlamaModel", true, EnginePeerBenchRun.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            throw new CliException(
                    ExitCode.UNAVAILABLE, "the llama.cpp binding (de.kherud:llama) is not on the class path");
        } finally {
            System.setOut(stdout);
        }
    }

    private static double[][] ours(Transformer t, int ctx, Params p) {
        double[][] out = new double[2][p.runs()];
        // the JIT compiles the kernels over the first runs (llama.cpp's are compiled ahead): warm up for WARM_UP_NANOS
        // (two runs at least) so that the medians are a long-running engine's, as a server's would be
        long warm = System.nanoTime();
        for (int r = 0; r < 2 || System.nanoTime() - warm < WARM_UP_NANOS; r++) {
            EngineBench bench = new EngineBench(t, 0, 1);
            bench.prefill(ctx);
            bench.decode(ctx, p.decodeSteps());
        }
        for (int r = 0; r < p.runs(); r++) {
            EngineBench bench = new EngineBench(t, 0, 1);
            out[0][r] = bench.prefill(ctx).medianTokPerSec();
            out[1][r] = bench.decode(ctx, p.decodeSteps()).medianTokPerSec();
        }
        return out;
    }

    private static double[][] peer(Path gguf, int threads, int ctx, Params p, int vocab) {
        SplittableRandom rnd = new SplittableRandom(1);
        int[] prompt = new int[ctx];
        for (int i = 0; i < ctx; i++) {
            prompt[i] = 3 + rnd.nextInt(Math.max(1, vocab - 3));
        }
        double[][] out = new double[2][p.runs()];
        try (LlamaCppReference cpp = LlamaCppReference.open(gguf, ctx + p.decodeSteps() + 8, false, threads)) {
            for (int r = -1; r < p.runs(); r++) {
                LlamaCppReference.Timing t = cpp.timedGreedy(prompt, p.decodeSteps());
                if (r >= 0) {
                    out[0][r] = ctx / (t.prefillNanos() / 1e9);
                    out[1][r] = t.steps() / (t.decodeNanos() / 1e9);
                }
            }
        }
        return out;
    }

    static void print(PrintWriter out, Path gguf, List<Row> rows, int runs) {
        out.printf(
                "machine: %d cpus, JDK %s; model %s; llama.cpp b4916 (de.kherud:llama 4.2.0, F16 KV cache); medians of %d"
                        + " runs [min-max], engram warmed up %d s first%n",
                Runtime.getRuntime().availableProcessors(),
                Runtime.version(),
                gguf.getFileName(),
                runs,
                WARM_UP_NANOS / 1_000_000_000L);
        out.printf(
                "%-8s %7s %6s %24s %24s %6s%n", "phase", "threads", "ctx", "engram tok/s", "llama.cpp tok/s", "ratio");
        for (Row r : rows) {
            out.printf(
                    Locale.ROOT,
                    "%-8s %7d %6d %24s %24s %6.2f%n",
                    r.phase(),
                    r.threads(),
                    r.context(),
                    cell(r.ours()),
                    cell(r.peer()),
                    r.ratio());
        }
        out.flush();
    }

    private static String cell(double[] runs) {
        double[] s = runs.clone();
        Arrays.sort(s);
        return String.format(Locale.ROOT, "%.1f [%.1f-%.1f]", median(runs), s[0], s[s.length - 1]);
    }

    static double median(double[] a) {
        double[] s = a.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
