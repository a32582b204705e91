package io.engram.topology.cli;

import io.engram.engine.backend.Backends;
import io.engram.engine.bench.LongInputTasks;
import io.engram.engine.bench.MemoryBench;
import io.engram.engine.config.ModelConfig;
import io.engram.engine.memory.MemorySpec;
import io.engram.engine.model.Transformer;
import io.engram.engine.session.Engine;
import io.engram.engine.tokenizer.Tokenizer;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** {@code engram bench memory}: the memory policies on generated long inputs, as a table (see {@link MemoryBench}). */
final class MemoryBenchRun {
    private MemoryBenchRun() {}

    /** A policy's spec at the sizes the options set, with DuoAttention or without (MemoryOptions.spec). */
    interface Specs {
        MemorySpec of(MemorySpec.Kind kind, boolean duo);
    }

    record Params(
            Path model,
            int threads,
            List<String> policies,
            List<String> tasks,
            List<Integer> lengths,
            List<Double> depths,
            int samples,
            int maxNew,
            int decodeTokens,
            int fullMax,
            Specs memory,
            long seed,
            int blockSize) {}

    static int run(CliContext ctx, Params p) {
        PrintWriter out = ctx.out();
        try (Engine engine = Engine.open(Engine.Spec.tool(p.model(), Backends.DeviceSettings.cpu(), p.threads(), false)
                .withBlockSize(p.blockSize()))) {
            Transformer t = engine.transformer();
            Tokenizer tok = engine.session().tokenizer();
            ModelConfig config = engine.config();
            List<MemoryBench.Candidate> candidates = new ArrayList<>();
            for (String name : p.policies()) {
                candidates.add(candidate(name, p.memory(), config, p.model()));
            }
            List<LongInputTasks.Kind> kinds = new ArrayList<>();
            for (String s : p.tasks()) {
                try {
                    kinds.add(LongInputTasks.Kind.valueOf(
                            s.strip().toUpperCase(Locale.ROOT).replace('-', '_')));
                } catch (IllegalArgumentException e) {
                    throw new CliException(
                            ExitCode.INVALID_INPUT,
                            "unknown task '%s'; available: passkey, multikey-niah, kv-retrieval, variable-tracking"
                                    .formatted(s));
                }
            }
            int[] lengths = p.lengths().stream().mapToInt(Integer::intValue).toArray();
            double[] depths =
                    p.depths().stream().mapToDouble(Double::doubleValue).toArray();
            long total = (long) kinds.size() * lengths.length * depths.length * p.samples() * candidates.size();
            MemoryBench bench = new MemoryBench(t, tok, p.maxNew(), p.decodeTokens(), p.fullMax());
            out.printf(
                    "machine: %d cpus, JDK %s, %s; model %s (%d layers, %d KV heads, trained context %d); KV blocks of %d tokens%n",
                    Runtime.getRuntime().availableProcessors(),
                    Runtime.version(),
                    engine.backend().describe(),
                    p.model().getFileName(),
                    config.layers(),
                    config.kvHeads(),
                    config.maxPositions(),
                    p.blockSize());
            for (MemoryBench.Candidate c : candidates) {
                out.printf("policy %-10s %s%n", c.name(), describe(c.name(), p.memory(), config));
            }
            out.flush();
            List<MemoryBench.Row> rows;
            try (Progress progress = Progress.forContext(ctx, "bench memory", "runs", null)) {
                long[] done = {0};
                rows = bench.run(
                        kinds,
                        lengths,
                        depths,
                        p.samples(),
                        candidates,
                        p.seed(),
                        line -> progress.update(++done[0], total, 0));
            }
            out.printf(
                    "%-18s %8s %5s %-10s %8s %7s %7s %8s %10s %10s %11s %10s%n",
                    "task",
                    "tokens",
                    "depth",
                    "policy",
                    "accuracy",
                    "top1",
                    "KL",
                    "samples",
                    "engine MiB",
                    "store MiB",
                    "prefill ms/t",
                    "decode ms/t");
            for (MemoryBench.Row r : rows) {
                out.printf(
                        Locale.ROOT,
                        "%-18s %8d %5.2f %-10s %8.2f %7s %7s %8d %10.2f %10.2f %11.3f %10.2f%n",
                        r.task(),
                        r.promptTokens(),
                        r.depth(),
                        r.policy(),
                        r.accuracy(),
                        fmt(r.top1Agreement(), "%.3f"),
                        fmt(r.meanKl(), "%.4f"),
                        r.samples(),
                        r.peakEngineBytes() / 1048576.0,
                        r.storeBytes() / 1048576.0,
                        r.prefillMsPerToken(),
                        r.decodeMsPerToken());
            }
            out.println(
                    "top1/KL: agreement with full attention along the teacher-forced gold answer (- where the input is longer "
                            + "than --full-max); engine MiB: peak KV held on the backend; store MiB: KV offloaded to the unit store.");
            for (MemoryBench.Candidate c : candidates) {
                io.engram.engine.memory.MemoryPolicy policy = c.policy();
                while (policy instanceof io.engram.engine.memory.ForwardingMemoryPolicy f) {
                    policy = f.inner();
                }
                if (policy instanceof io.engram.engine.memory.retrieval.RetrievalMemory rm) {
                    var s = rm.indexStats();
                    out.printf(
                            Locale.ROOT,
                            "unit index %-10s %d rankings, %d over an index (from %d units): %.1f%% of units scored, "
                                    + "recall of the picks %.3f against %d exact scans%n",
                            c.name(),
                            s.rankings(),
                            s.indexedRankings(),
                            io.engram.engine.memory.retrieval.UnitIndex.CLUSTER_FROM,
                            100 * s.meanScoredShare(),
                            s.recall(),
                            s.sampled());
                }
            }
            out.flush();
            return ExitCode.OK.code();
        }
    }

    /** The examples of {@code file}, or the reason they cannot be read as an invalid-input error. */
    static List<io.engram.engine.bench.QaReplay.Example> readExamples(Path file) {
        try {
            return io.engram.engine.bench.QaReplay.read(file);
        } catch (IllegalArgumentException | java.io.UncheckedIOException e) {
            throw new CliException(ExitCode.INVALID_INPUT, e.getMessage());
        }
    }

    /** What every {@code bench qa} run reads: the model, the examples file, the policies and how to build them. */
    record QaInputs(
            Path model,
            Path examplesFile,
            int threads,
            List<String> policies,
            Specs memory,
            int maxNew,
            int blockSize) {

        List<io.engram.engine.bench.QaReplay.Example> examples() {
            return readExamples(examplesFile);
        }

        Engine open() {
            return Engine.open(Engine.Spec.tool(model, Backends.DeviceSettings.cpu(), threads, false)
                    .withBlockSize(blockSize));
        }
    }

    /**
     * {@code bench qa}: see {@link io.engram.engine.bench.QaReplay}.
     *
     * @param padTo pad each example to these lengths in tokens with held-out filler ({@link
     *     io.engram.engine.bench.QaReplay#padded}); empty: the examples as they are
     * @param skills only these skills (empty: all); {@code perCell} at most this many per skill and length (0: all)
     */
    static int qa(CliContext ctx, QaInputs in, List<Integer> padTo, List<String> skills, int perCell) {
        PrintWriter out = ctx.out();
        List<io.engram.engine.bench.QaReplay.Example> examples = in.examples();
        Path modelPath = in.model();
        Path examplesFile = in.examplesFile();
        List<String> policies = in.policies();
        Specs memory = in.memory();
        int maxNew = in.maxNew();
        try (Engine engine = in.open()) {
            Transformer t = engine.transformer();
            Tokenizer tok = engine.session().tokenizer();
            ModelConfig config = engine.config();
            java.util.Map<String, io.engram.engine.memory.MemoryPolicy> chosen = new java.util.LinkedHashMap<>();
            for (String name : policies) {
                chosen.put(name, candidate(name, memory, config, modelPath).policy());
            }
            List<io.engram.engine.bench.QaReplay.Example> chosenExamples = new java.util.ArrayList<>();
            for (int target : padTo.isEmpty() ? List.of(0) : padTo) {
                chosenExamples.addAll(
                        io.engram.engine.bench.QaReplay.padded(examples, skills, perCell, target, tok, 1));
            }
            out.printf(
                    "model %s; %d examples from %s%s; policies %s; %s%n",
                    modelPath.getFileName(),
                    chosenExamples.size(),
                    examplesFile.getFileName(),
                    padTo.isEmpty()
                            ? ""
                            : ", padded to " + padTo + " tokens with held-out filler "
                                    + "(the example's text at depth 0, 0.5, 1 in turn)",
                    chosen.keySet(),
                    chosen.keySet().stream()
                            .map(n -> n + ": " + describe(n, memory, config))
                            .toList());
            out.flush();
            List<io.engram.engine.bench.QaReplay.Row> rows;
            long total = (long) chosenExamples.size() * chosen.size();
            try (Progress progress = Progress.forContext(ctx, "bench qa", "examples", null)) {
                rows = io.engram.engine.bench.QaReplay.run(
                        t, tok, chosenExamples, chosen, maxNew, done -> progress.update(done, total, 0));
            }
            out.printf(
                    "%-10s %-10s %7s %8s %9s %10s %10s %9s %12s %10s %12s %11s%n",
                    "policy",
                    "skill",
                    "tokens",
                    "examples",
                    "accuracy",
                    "reference",
                    "agreement",
                    "fact seen",
                    "ms/example",
                    "engine MiB",
                    "prefill ms/t",
                    "decode ms/t");
            for (var r : rows) {
                out.printf(
                        Locale.ROOT,
                        "%-10s %-10s %7d %8d %9.3f %10.3f %10.3f %9.3f %12.1f %10.2f %12.3f %11.2f%n",
                        r.policy(),
                        r.kind(),
                        r.length(),
                        r.examples(),
                        r.accuracy(),
                        r.referenceAccuracy(),
                        r.agreement(),
                        r.ownAttended(),
                        r.msPerExample(),
                        r.peakEngineBytes() / 1048576.0,
                        r.prefillMsPerToken(),
                        r.decodeMsPerToken());
            }
            out.println(
                    "accuracy: our greedy answer holds the expected value (exactly the refusal where one is expected);"
                            + " reference: the PyTorch answer's; agreement: the two greedy answers are identical; fact seen: the piece"
                            + " holding the expected value was among the memory spans the answer attended to in every layer (retrieved"
                            + " units, init tokens, local window); engine MiB: the most KV the engine held for one example;"
                            + " prefill ms/t: ingest time per event token; decode ms/t: the answer's time per generated token.");
            out.flush();
            return ExitCode.OK.code();
        }
    }

    private static String fmt(double v, String f) {
        return Double.isNaN(v) ? "-" : String.format(Locale.ROOT, f, v);
    }

    private static MemorySpec.Kind kind(String name) {
        return switch (name.strip().toLowerCase(Locale.ROOT)) {
            case "full" -> MemorySpec.Kind.FULL;
            case "streaming", "streamingllm" -> MemorySpec.Kind.STREAMING;
            case "infllm" -> MemorySpec.Kind.INFLLM;
            case "emllm", "em-llm" -> MemorySpec.Kind.EMLLM;
            case "sirllm" -> MemorySpec.Kind.SIRLLM;
            default ->
                throw new CliException(
                        ExitCode.INVALID_INPUT,
                        "unknown policy '%s'; available: full, streaming, infllm, emllm, sirllm, and duo+<policy>"
                                .formatted(name));
        };
    }

    static MemoryBench.Candidate candidate(String name, Specs specs, ModelConfig config, Path modelDir) {
        String n = name.strip().toLowerCase(Locale.ROOT);
        try {
            return new MemoryBench.Candidate(n, spec(n, specs).create(config, modelDir));
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCode.INVALID_INPUT, n + ": " + e.getMessage());
        }
    }

    static String describe(String name, Specs specs, io.engram.engine.config.ModelConfig model) {
        return spec(name.strip().toLowerCase(Locale.ROOT), specs).describe(model);
    }

    /** A bench's policy name: a policy, or duo+ and a policy. */
    private static MemorySpec spec(String n, Specs specs) {
        boolean duo = n.startsWith("duo+");
        try {
            return specs.of(kind(duo ? n.substring(4) : n), duo);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCode.INVALID_INPUT, n + ": " + e.getMessage());
        }
    }
}
