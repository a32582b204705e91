package io.engram.engine.bench;

import io.engram.engine.backend.Backend;
import io.engram.engine.backend.Backends;
import io.engram.engine.backend.cuda.CudaBackend;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.memory.MemorySpec;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.session.Engine;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * The engine's GPU table: prefill and decode throughput (batch 1, and several sessions stepped together through
 * {@link Transformer#forwardBatch}) at long contexts under memory policies, the memory bandwidth a decode step
 * achieves, and the device memory a session holds. Runs on any backend ({@code --device cpu} for a dry run); the
 * peer is {@code src/test/gpu/hf_peer.py} (Hugging Face transformers on the same weights and GPU).
 *
 * <pre>
 * java -cp ... io.engram.engine.bench.GpuBench --model DIR [--device cuda] [--contexts 4096,32768,131072]
 *     [--policies FULL,STREAMING,INFLLM] [--full-max 32768] [--batch 8] [--decode-steps 32] [--runs 3]
 * </pre>
 *
 * Timing: wall clock around whole forward calls, each ending in a device-to-host copy of the logits (the
 * synchronisation point a caller sees); median of {@code runs} after one warm-up. Every row's prefill logits are
 * finite (checked), so a broken kernel cannot report a fast time.
 */
public final class GpuBench {
    private GpuBench() {}

    /** One measured row. */
    public record Row(
            String model,
            String policy,
            int context,
            double prefillTokPerSec,
            double decodeTokPerSec,
            int batch,
            double batchDecodeTokPerSec,
            double weightMiB,
            double kvMiBPerSession,
            double decodeGBs,
            boolean kvCounted,
            double peakMiB) {}

    public static void main(String[] args) {
        Path model = null;
        Backends.Device device = Backends.Device.CUDA;
        List<Integer> contexts = List.of(4096, 32768, 131072);
        List<String> policies = List.of("FULL", "STREAMING", "INFLLM");
        int fullMax = 32768;
        int batch = 8;
        int steps = 32;
        int runs = 3;
        int chunk = 512;
        for (int i = 0; i < args.length; i += 2) {
            String v = args[i + 1];
            switch (args[i]) {
                case "--model" -> model = Path.of(v);
                case "--device" -> device = Backends.Device.valueOf(v.toUpperCase(Locale.ROOT));
                case "--contexts" ->
                    contexts =
                            Arrays.stream(v.split(",")).map(Integer::parseInt).toList();
                case "--policies" ->
                    policies = List.of(v.toUpperCase(Locale.ROOT).split(","));
                case "--full-max" -> fullMax = Integer.parseInt(v);
                case "--batch" -> batch = Integer.parseInt(v);
                case "--decode-steps" -> steps = Integer.parseInt(v);
                case "--runs" -> runs = Integer.parseInt(v);
                case "--chunk" -> chunk = Integer.parseInt(v);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (model == null) {
            throw new IllegalArgumentException("--model DIR is required");
        }
        Engine.Spec spec = Engine.Spec.tool(
                        model,
                        new Backends.DeviceSettings(device, 0),
                        Runtime.getRuntime().availableProcessors(),
                        false)
                .withBlockSize(128)
                .withPrefillChunk(chunk);
        try (Engine engine = Engine.open(spec)) {
            Model m = engine.model();
            Backend backend = engine.backend();
            Transformer t = engine.transformer();
            System.out.printf(
                    "machine: %s, JDK %s, model %s (%d layers, hidden %d, %d/%d heads of %d), weights %s%n",
                    backend.describe(),
                    Runtime.version(),
                    model.getFileName(),
                    m.config().layers(),
                    m.config().hiddenSize(),
                    m.config().heads(),
                    m.config().kvHeads(),
                    m.config().headDim(),
                    m.weights().layers()[0].wq().dtype());
            System.out.printf(
                    "%-14s %-9s %7s %12s %12s %5s %14s %9s %10s %10s %9s%n",
                    "model",
                    "policy",
                    "ctx",
                    "prefill tok/s",
                    "decode tok/s",
                    "batch",
                    "batch tok/s",
                    "weights",
                    "KV/session",
                    "decode GB/s",
                    "peak MiB");
            for (int ctx : contexts) {
                for (String p : policies) {
                    if (p.equals("FULL") && ctx > fullMax) {
                        continue;
                    }
                    Row r = row(t, model, p, ctx, steps, runs, batch);
                    System.out.printf(
                            "%-14s %-9s %7d %12.0f %12.1f %5d %14.1f %7.1fMi %8.2fMi %9s%.1f %9.0f%n",
                            r.model(),
                            r.policy(),
                            r.context(),
                            r.prefillTokPerSec(),
                            r.decodeTokPerSec(),
                            r.batch(),
                            r.batchDecodeTokPerSec(),
                            r.weightMiB(),
                            r.kvMiBPerSession(),
                            r.kvCounted() ? "" : ">=",
                            r.decodeGBs(),
                            r.peakMiB());
                    System.out.flush();
                }
            }
        }
    }

    static Row row(Transformer t, Path dir, String policyName, int ctx, int steps, int runs, int batch) {
        MemorySpec ms = MemorySpec.defaults(MemorySpec.Kind.valueOf(policyName));
        int[] prompt = tokens(t, ctx, 1);
        // prefill: one warm-up on a short prompt, then runs over the full context
        double[] prefill = new double[runs];
        KvCache cache = null;
        MemoryPolicy policy = null;
        warm(t, ms, dir);
        for (int r = 0; r < runs; r++) {
            cache = t.newCache();
            policy = ms.create(t.config(), dir);
            float[][] last = new float[1][];
            long t0 = System.nanoTime();
            t.forward(cache, prompt, null, policy, Transformer.Logits.LAST, (s, l) -> last[0] = l.clone());
            prefill[r] = ctx / ((System.nanoTime() - t0) / 1e9);
            for (float f : last[0]) {
                if (!Float.isFinite(f)) {
                    throw new IllegalStateException(
                            "prefill of %d tokens under %s produced a non-finite logit".formatted(ctx, policyName));
                }
            }
        }
        // decode, batch 1, continuing the last prefill
        double[] decode = new double[runs];
        int[] next = {prompt[prompt.length - 1]};
        for (int r = 0; r < runs; r++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < steps; i++) {
                t.forward(
                        cache,
                        next,
                        null,
                        policy,
                        Transformer.Logits.LAST,
                        (s, l) -> next[0] = io.engram.engine.generate.Sampler.argmax(l, l.length));
            }
            decode[r] = steps / ((System.nanoTime() - t0) / 1e9);
        }
        long kvBytes = cache.residentBytes();
        CudaBackend.MemoryReport mem = t.backend() instanceof CudaBackend c ? c.memoryReport() : null;
        double weightBytes = mem == null ? 0 : mem.weightBytes();
        boolean full = policyName.equals("FULL");
        double bytesPerToken = weightBytes + (full ? kvBytes : 0);
        double decodeGBs = bytesPerToken * median(decode) / 1e9;
        // several sessions decoding together: each step reads the weights once for all of them
        double batchRate = 0;
        if (batch > 1) {
            batchRate = batchDecode(t, ms, dir, Math.min(ctx, 4096), steps, batch);
        }
        double peak =
                mem == null ? 0 : ((CudaBackend) t.backend()).memoryReport().budgetPeakBytes() / 1048576.0;
        return new Row(
                dir.getFileName().toString(),
                policyName,
                ctx,
                median(prefill),
                median(decode),
                batch,
                batchRate,
                weightBytes / 1048576.0,
                kvBytes / 1048576.0,
                decodeGBs,
                full,
                peak);
    }

    /** Aggregate decode tokens/s of {@code batch} sessions of {@code ctx} tokens stepped together. */
    static double batchDecode(Transformer t, MemorySpec ms, Path dir, int ctx, int steps, int batch) {
        List<KvCache> caches = new ArrayList<>();
        List<MemoryPolicy> policies = new ArrayList<>();
        int[] next = new int[batch];
        for (int b = 0; b < batch; b++) {
            KvCache c = t.newCache();
            MemoryPolicy p = ms.create(t.config(), dir);
            int[] prompt = tokens(t, ctx, 100 + b);
            t.forward(c, prompt, null, p, Transformer.Logits.NONE, (s, l) -> {});
            caches.add(c);
            policies.add(p);
            next[b] = prompt[ctx - 1];
        }
        long t0 = 0;
        for (int i = -2; i < steps; i++) { // two warm-up steps
            if (i == 0) {
                t0 = System.nanoTime();
            }
            List<Transformer.Sequence> seqs = new ArrayList<>();
            for (int b = 0; b < batch; b++) {
                int bb = b;
                seqs.add(new Transformer.Sequence(
                        caches.get(b),
                        new int[] {next[b]},
                        null,
                        policies.get(b),
                        Transformer.Logits.LAST,
                        (s, l) -> next[bb] = io.engram.engine.generate.Sampler.argmax(l, l.length)));
            }
            t.forwardBatch(seqs);
        }
        return (double) steps * batch / ((System.nanoTime() - t0) / 1e9);
    }

    private static void warm(Transformer t, MemorySpec ms, Path dir) {
        KvCache c = t.newCache();
        MemoryPolicy p = ms.create(t.config(), dir);
        t.forward(c, tokens(t, 600, 9), null, p, Transformer.Logits.LAST, (s, l) -> {});
        t.forward(c, new int[] {1}, null, p, Transformer.Logits.LAST, (s, l) -> {});
    }

    private static int[] tokens(Transformer t, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = r.nextInt(t.config().vocabSize());
        }
        return a;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
