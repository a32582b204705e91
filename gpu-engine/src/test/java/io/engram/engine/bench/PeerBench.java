package io.engram.engine.bench;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.gguf.LlamaCppReference;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Engram's engine against llama.cpp (de.kherud:llama, b4916) on the same GGUF file in the same process: prefill and
 * greedy decode throughput at equal threads. Not a test: run it with
 * {@code java -cp <gpu-engine test classpath> io.engram.engine.bench.PeerBench FILE.gguf CTX DECODE_STEPS THREADS}.
 */
public final class PeerBench {
    private PeerBench() {}

    public static void main(String[] args) throws Exception {
        Path gguf = args[0].startsWith("synthetic:") ? synthetic(args[0]) : Path.of(args[0]);
        int ctx = Integer.parseInt(args[1]);
        int steps = Integer.parseInt(args[2]);
        int threads = Integer.parseInt(args[3]);
        int runs = 5;
        SplittableRandom r = new SplittableRandom(1);
        int[] prompt = new int[ctx];
        for (int i = 0; i < ctx; i++) {
            prompt[i] = 3 + r.nextInt(500);
        }
        double[] cppPrefill = new double[runs];
        double[] cppDecode = new double[runs];
        try (LlamaCppReference cpp = LlamaCppReference.open(gguf, ctx + steps + 8)) {
            for (int k = -1; k < runs; k++) {
                long t0 = System.nanoTime();
                cpp.greedy(prompt, 1);
                long t1 = System.nanoTime();
                cpp.greedy(prompt, steps + 1);
                long t2 = System.nanoTime();
                if (k >= 0) {
                    cppPrefill[k] = ctx / ((t1 - t0) / 1e9);
                    cppDecode[k] = steps / (((t2 - t1) - (t1 - t0)) / 1e9);
                }
            }
        }
        double[] ourPrefill = new double[runs];
        double[] ourDecode = new double[runs];
        try (Model m = Model.open(gguf);
                CpuBackend b = new CpuBackend(threads, false)) {
            Transformer t = new Transformer(
                    m.config(), m.weights(), b, EngineSettings.defaults().withThreads(threads));
            EngineBench bench = new EngineBench(t, 1, runs);
            EngineBench.Row p = bench.prefill(ctx);
            EngineBench.Row d = bench.decode(ctx, steps);
            Arrays.fill(ourPrefill, p.medianTokPerSec());
            Arrays.fill(ourDecode, d.medianTokPerSec());
        }
        System.out.printf(
                "%-8s %10s %16s %7s %8s %6s  %s%n",
                "phase", "engram", "peer(llama.cpp)", "ratio", "threads", "ctx", "model");
        row("prefill", median(ourPrefill), median(cppPrefill), threads, ctx, gguf);
        row("decode", median(ourDecode), median(cppDecode), threads, ctx, gguf);
        System.out.printf(
                "(llama.cpp decode measured as greedy(ctx, steps+1) minus greedy(ctx, 1); medians of %d runs; JDK %s)%n",
                runs, Runtime.version());
    }

    /**
     * {@code synthetic:HIDDEN:LAYERS:TYPE}: a random Llama (heads of 64, 4 query heads per KV head, FFN 2.75x) written
     * as GGUF in the given type, for throughput at sizes where weights no longer fit the caches.
     */
    static Path synthetic(String spec) throws Exception {
        String[] p = spec.split(":");
        int hidden = Integer.parseInt(p[1]);
        int layers = Integer.parseInt(p[2]);
        io.engram.engine.tensor.DType type = io.engram.engine.tensor.DType.valueOf(p[3]);
        int heads = hidden / 64;
        var s = new io.engram.engine.model.gguf.TinyGgufModels.Spec(
                "bench-h" + hidden + "-l" + layers,
                io.engram.engine.config.Architecture.LLAMA,
                hidden,
                layers,
                heads,
                Math.max(1, heads / 4),
                hidden * 11 / 4 / 32 * 32,
                2048,
                true,
                7L);
        Path dir = java.nio.file.Files.createTempDirectory("engram-peerbench");
        return io.engram.engine.model.gguf.TinyGgufModels.write(s, type, dir);
    }

    static void row(String phase, double ours, double peer, int threads, int ctx, Path model) {
        System.out.printf(
                "%-8s %10.1f %16.1f %7.2f %8d %6d  %s%n",
                phase, ours, peer, ours / peer, threads, ctx, model.getFileName());
    }

    static double median(double[] a) {
        double[] s = a.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
