package io.engram.topology.cli;

import io.engram.engine.bench.EngineBench;
import io.engram.engine.config.ModelFormatException;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.session.Engine;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram bench engine}: prefill and decode throughput of the engine; {@code engram bench store}: memory-unit
 * write/read throughput and checkpoint growth (see {@link StoreBenchTable}); {@code engram bench memory}: the memory
 * policies on generated long inputs (see {@link MemoryBenchRun}). Each prints a table.
 */
@Command(
        name = "bench",
        description = {
            "Benchmarks, printed as tables.",
            "'engram bench engine --model DIR [--peer llama.cpp]': prefill and decode tokens/s (with --peer: llama.cpp on the same GGUF, "
                    + "1 and --threads threads, median of >= 5 runs, ratio; --model synthetic-90m (or synthetic-1b, synthetic-25m) writes a random "
                    + "Llama of that size in each of --types first).",
            "'engram bench store': memory-unit write/read MB/s (RocksDB store vs Flink keyed state) and checkpoint growth.",
            "'engram bench memory --model DIR [--set engram.memory.KEY=V]': memory policies on generated long inputs (passkey, "
                    + "multi-key NIAH, uuid KV retrieval, variable tracking): accuracy, agreement with full attention, engine memory, "
                    + "time per token.",
            "'engram bench qa --model DIR --examples eval_examples.jsonl.gz [--pad-to 4096,32768]': replays training/'s PyTorch "
                    + "QA evaluation through the engine under each --policies entry: accuracy, the reference's accuracy, agreement of "
                    + "the greedy answers; --pad-to sets each example in held-out filler of that length; --stream 1048576 --facts 20 plants "
                    + "20 facts in one stream of held-out filler and asks each once after it.",
            "'engram bench attribution --model DIR [--set engram.memory.KEY=V]': both attribution tiers on generated sessions "
                    + "with planted needles: precision@k, recall@k and time per attribution per length.",
            "'engram bench reliability [--sessions N --rounds N --kills N --fault-rate R]': engram run in a child JVM with injected "
                    + "failures, killed with SIGKILL after random rounds and restarted; every query answered once and as in a "
                    + "fault-free run."
        })
public final class BenchCommand implements Callable<Integer> {

    @ParentCommand
    EngramCli root;

    @Parameters(
            index = "0",
            description = "What to benchmark: engine, store, memory, qa, attribution, restart or reliability.")
    String what;

    @Option(
            names = "--examples",
            description = "qa: eval_examples.jsonl[.gz] written by training/engram_train/evaluate.py; attribution: "
                    + "sessions of --facts of its held-out facts in held-out filler, asked in their own phrasings.")
    Path examples;

    @Option(names = "--model", description = "Hugging Face model folder or .gguf file (engine; required).")
    Path model;

    @Option(names = "--threads", defaultValue = "2", description = "CPU threads (default ${DEFAULT-VALUE}).")
    int threads;

    @Option(
            names = "--contexts",
            split = ",",
            defaultValue = "128,512",
            description = "Context lengths (default ${DEFAULT-VALUE}).")
    List<Integer> contexts;

    @Option(
            names = "--decode-steps",
            defaultValue = "32",
            description = "Decode steps per run (default ${DEFAULT-VALUE}).")
    int decodeSteps;

    @Option(names = "--runs", defaultValue = "3", description = "Measured runs per row (default ${DEFAULT-VALUE}).")
    int runs;

    @Option(
            names = "--device",
            defaultValue = "cpu",
            converter = DeviceConverter.class,
            description =
                    "cpu, cuda or auto (cuda when a GPU, its driver and the kernels are present; default ${DEFAULT-VALUE}).")
    io.engram.engine.backend.Backends.Device device;

    @Option(
            names = "--gpu-memory-mb",
            defaultValue = "0",
            description = "GPU memory budget in MiB with --device cuda/auto (0 = 90%% of what is free).")
    long gpuMemoryMb;

    @Option(
            names = "--types",
            split = ",",
            defaultValue = "F32,BF16,Q8_0,Q4_0",
            description =
                    "engine --peer with --model synthetic-1b, synthetic-90m or synthetic-25m: storage types of the random model's "
                            + "matrices, one GGUF each (default ${DEFAULT-VALUE}).")
    List<io.engram.engine.tensor.DType> types;

    @Option(
            names = "--peer",
            description = "engine: also run this peer on the same GGUF and print the ratio (llama.cpp).")
    String peer;

    @Option(names = "--q8", description = "Requantize float weights to Q8_0 at load.")
    boolean q8;

    @Option(
            names = "--policies",
            split = ",",
            defaultValue = "full,streaming,infllm,emllm,sirllm",
            description =
                    "memory: policies to compare; duo+POLICY puts DuoAttention on top (default ${DEFAULT-VALUE}).")
    List<String> policies;

    @Option(
            names = "--tasks",
            split = ",",
            defaultValue = "passkey,multikey-niah,kv-retrieval,variable-tracking",
            description = "memory: generated tasks (default ${DEFAULT-VALUE}).")
    List<String> tasks;

    @Option(
            names = "--lengths",
            split = ",",
            defaultValue = "4096,32768,131072",
            description = "memory: input lengths in tokens; add 1048576 for a million (default ${DEFAULT-VALUE}).")
    List<Integer> lengths;

    @Option(
            names = "--depths",
            split = ",",
            defaultValue = "0,0.5,1",
            description = "memory: evidence depths, 0..1 (default ${DEFAULT-VALUE}).")
    List<Double> depths;

    @Option(
            names = "--samples",
            defaultValue = "1",
            description = "memory: inputs per task, length and depth (default ${DEFAULT-VALUE}).")
    int samples;

    @Option(
            names = "--max-new-tokens",
            defaultValue = "24",
            description = "memory: greedy answer length cap (default ${DEFAULT-VALUE}).")
    int maxNew;

    @Option(
            names = "--decode-tokens",
            defaultValue = "64",
            description =
                    "memory: tokens each input decodes for the decode column, the answer then greedy continuation "
                            + "(the steady rate, not only the first steps after the prompt; default ${DEFAULT-VALUE}).")
    int decodeTokens;

    @Option(
            names = "--full-max",
            defaultValue = "4096",
            description =
                    "memory: longest input full attention runs on as the reference (quadratic; default ${DEFAULT-VALUE}).")
    int fullMax;

    @Option(
            names = "--block-size",
            defaultValue = "128",
            description = "memory: tokens per KV block / InfLLM unit (default ${DEFAULT-VALUE}).")
    int blockSize;

    @Option(
            names = "--seed",
            defaultValue = "1",
            description = "memory: seed of the generated inputs (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(
            names = "--needles",
            defaultValue = "4",
            description = "attribution: questions per session (default ${DEFAULT-VALUE}).")
    int needles;

    @Option(
            names = "--copies",
            defaultValue = "1",
            description = "attribution: events each needle is planted in (default ${DEFAULT-VALUE}).")
    int copies;

    @Option(
            names = "--event-words",
            defaultValue = "150",
            description = "attribution: words per generated event (default ${DEFAULT-VALUE}).")
    int eventWords;

    @Option(
            names = "--segment-words",
            defaultValue = "100",
            description = "attribution: words per segment (default ${DEFAULT-VALUE}).")
    int segmentWords;

    @Option(
            names = "--top-k",
            defaultValue = "5",
            description = "attribution: segments returned (default ${DEFAULT-VALUE}).")
    int topK;

    @Option(
            names = "--candidates",
            defaultValue = "16",
            description = "attribution: precise-tier candidates (default ${DEFAULT-VALUE}).")
    int candidates;

    @Option(
            names = "--max-context-tokens",
            defaultValue = "2048",
            description = "attribution: tokens the candidates hold at most (default ${DEFAULT-VALUE}).")
    int maxContextTokens;

    @Option(
            names = "--permutations",
            defaultValue = "5",
            description = "attribution: Shapley permutations per level (default ${DEFAULT-VALUE}).")
    int permutations;

    @Option(names = "--no-precise", description = "attribution: the fast tier only.")
    boolean noPrecise;

    @Option(
            names = "--heads",
            description = "attribution: head pattern whose retrieval heads the fast tier counts (default: "
                    + "duo-heads.tsv next to the model if present, else every head).")
    Path heads;

    @Option(
            names = "--pad-to",
            split = ",",
            description = "qa: pad each example to these lengths in tokens with held-out "
                    + "filler, its own text at depth 0, 0.5 and 1 in turn (default: as evaluated, 256-1,024 tokens).")
    List<Integer> padTo;

    @Option(
            names = "--skills",
            split = ",",
            description = "qa: only these skills (passkey, needle, multikey, uuid, vars, "
                    + "dialogue, reading, summary, refusal; default: all).")
    List<String> skills;

    @Option(
            names = "--per-cell",
            defaultValue = "0",
            description = "qa: examples per skill and length at most (0: all; default ${DEFAULT-VALUE}).")
    int perCell;

    @Option(
            names = "--stream",
            description = "qa: instead of one session per example, one stream of this many tokens of held-out filler "
                    + "with --facts examples planted at spread depths, every question asked after the whole stream.")
    Long stream;

    @Option(
            names = "--facts",
            defaultValue = "20",
            description = "qa with --stream, attribution with --examples: facts planted per stream or session "
                    + "(default ${DEFAULT-VALUE}).")
    int facts;

    @Option(
            names = "--sessions",
            defaultValue = "4",
            description = "reliability: sessions streamed (default ${DEFAULT-VALUE}).")
    int sessions;

    @Option(
            names = "--rounds",
            defaultValue = "8",
            description = "reliability: rounds of a turn and a question per session (default ${DEFAULT-VALUE}).")
    int rounds;

    @Option(
            names = "--kills",
            defaultValue = "3",
            description =
                    "reliability: kill -9 of engram run after this many random rounds (default ${DEFAULT-VALUE}).")
    int kills;

    @Option(
            names = "--fault-rate",
            defaultValue = "0.2",
            description = "reliability: share of ingests and answers that fail on purpose (default ${DEFAULT-VALUE}).")
    double faultRate;

    @Option(
            names = "--work-dir",
            description = "reliability: data directories and logs of the child runs (default: a new "
                    + "folder under the temp directory).")
    Path workDir;

    @picocli.CommandLine.Mixin
    StoreBenchTable store = new StoreBenchTable();

    @Override
    public Integer call() {
        if (what.equals("memory")) {
            if (model == null) {
                throw new CliException(ExitCode.INVALID_INPUT, "bench memory needs --model");
            }
            var options = root.options(java.util.Map.of());
            MemoryBenchRun.Specs memory = (kind, duo) -> io.engram.topology.MemoryOptions.spec(options, kind, duo);
            return MemoryBenchRun.run(
                    root.context(),
                    new MemoryBenchRun.Params(
                            model,
                            threads,
                            policies,
                            tasks,
                            lengths,
                            depths,
                            samples,
                            maxNew,
                            decodeTokens,
                            fullMax,
                            memory,
                            seed,
                            blockSize));
        }
        if (what.equals("qa")) {
            if (model == null || examples == null) {
                throw new CliException(ExitCode.INVALID_INPUT, "bench qa needs --model and --examples");
            }
            var options = root.options(java.util.Map.of());
            MemoryBenchRun.Specs memory = (kind, duo) -> io.engram.topology.MemoryOptions.spec(options, kind, duo);
            var in = new MemoryBenchRun.QaInputs(model, examples, threads, policies, memory, maxNew, blockSize);
            List<String> only = skills == null ? List.of() : skills;
            if (stream != null) {
                if (stream < 1 || facts < 1) {
                    throw new CliException(ExitCode.INVALID_INPUT, "bench qa: --stream and --facts must be positive");
                }
                return QaStreamRun.run(root.context(), in, new QaStreamRun.StreamShape(stream, facts, only));
            }
            return MemoryBenchRun.qa(root.context(), in, padTo == null ? List.of() : padTo, only, perCell);
        }
        if (what.equals("attribution")) {
            if (model == null) {
                throw new CliException(ExitCode.INVALID_INPUT, "bench attribution needs --model");
            }
            if (needles < 1
                    || copies < 1
                    || eventWords < 1
                    || segmentWords < 1
                    || topK < 1
                    || candidates < 1
                    || maxContextTokens < 1
                    || permutations < 0) {
                throw new CliException(
                        ExitCode.INVALID_INPUT, "bench attribution sizes must be positive (permutations >= 0)");
            }
            var options = root.options(java.util.Map.of());
            return AttributionBenchRun.run(
                    root.context(),
                    new AttributionBenchRun.Params(
                            model,
                            threads,
                            lengths,
                            needles,
                            copies,
                            eventWords,
                            segmentWords,
                            new io.engram.engine.bench.AttributionBench.Settings(
                                    topK, candidates, maxContextTokens, permutations, !noPrecise),
                            memorySpec(options),
                            heads,
                            options.get(io.engram.topology.MemoryOptions.DUO_SPARSITY),
                            seed,
                            blockSize,
                            examples,
                            facts,
                            skills == null ? List.of() : skills));
        }
        if (what.equals("restart")) {
            if (model == null) {
                throw new CliException(ExitCode.INVALID_INPUT, "bench restart needs --model");
            }
            var options = root.options(java.util.Map.of());
            return RestartBenchRun.run(
                    root.context(),
                    new RestartBenchRun.Params(
                            model,
                            threads,
                            lengths,
                            memorySpec(options),
                            options.get(io.engram.topology.EngineOptions.KV_STORAGE),
                            blockSize,
                            eventWords,
                            maxNew));
        }
        if (what.equals("reliability")) {
            if (sessions < 1 || rounds < 1 || kills < 0 || faultRate < 0 || faultRate > 1) {
                throw new CliException(
                        ExitCode.INVALID_INPUT,
                        "bench reliability needs --sessions and --rounds >= 1, "
                                + "--kills >= 0 and --fault-rate in 0..1");
            }
            try {
                Path dir = workDir != null ? workDir : java.nio.file.Files.createTempDirectory("engram-reliability-");
                return ReliabilityBenchRun.run(
                        root.context(),
                        new ReliabilityBenchRun.Params(
                                model,
                                sessions,
                                rounds,
                                kills,
                                faultRate,
                                seed,
                                dir,
                                java.time.Duration.ofMinutes(5),
                                root::options));
            } catch (CliException e) {
                throw e;
            } catch (Exception e) {
                throw new CliException(ExitCode.UNAVAILABLE, "bench reliability: " + e.getMessage());
            }
        }
        CliContext ctx = root.context();
        if (what.equals("store")) {
            return store.run(ctx, runs);
        }
        if (!what.equals("engine")) {
            throw new CliException(
                    ExitCode.INVALID_INPUT,
                    "unknown benchmark '" + what + "'; available: engine, store, memory, qa, attribution, restart");
        }
        if (model == null) {
            throw new CliException(ExitCode.INVALID_INPUT, "bench engine needs --model DIR_OR_GGUF");
        }
        PrintWriter out = ctx.out();
        if (peer != null) {
            if (!peer.equals("llama.cpp")) {
                throw new CliException(ExitCode.INVALID_INPUT, "unknown --peer '" + peer + "'; available: llama.cpp");
            }
            if (device != io.engram.engine.backend.Backends.Device.CPU || q8) {
                throw new CliException(
                        ExitCode.INVALID_INPUT,
                        "--peer llama.cpp compares the CPU engine on the file as it is:" + " drop --device and --q8");
            }
            List<Integer> threadCounts = threads > 1 ? List.of(1, threads) : List.of(1);
            try {
                for (java.nio.file.Path gguf : EnginePeerBenchRun.ggufs(
                        model,
                        types,
                        java.nio.file.Path.of(System.getProperty("java.io.tmpdir"), "engram-bench-models"))) {
                    List<EnginePeerBenchRun.Row> rows = EnginePeerBenchRun.measure(
                            new EnginePeerBenchRun.Params(gguf, threadCounts, contexts, decodeSteps, Math.max(5, runs)),
                            gguf);
                    EnginePeerBenchRun.print(out, gguf, rows, Math.max(5, runs));
                }
            } catch (ModelFormatException e) {
                throw new CliException(ExitCode.INVALID_INPUT, e.getMessage());
            } catch (IllegalStateException e) {
                throw new CliException(ExitCode.UNAVAILABLE, "llama.cpp: " + e.getMessage());
            }
            return ExitCode.OK.code();
        }
        try (Engine engine = Engine.open(Engine.Spec.tool(
                model,
                new io.engram.engine.backend.Backends.DeviceSettings(device, gpuMemoryMb * 1024L * 1024L),
                threads,
                q8))) {
            Model m = engine.model();
            io.engram.engine.backend.Backend backend = engine.backend();
            Transformer t = engine.transformer();
            EngineBench bench = new EngineBench(t, 1, runs);
            String dtype = m.weights().layers()[0].wq().dtype() + (q8 ? "->Q8_0" : "");
            out.printf(
                    "machine: %d cpus, JDK %s, %s%n",
                    Runtime.getRuntime().availableProcessors(), Runtime.version(), backend.describe());
            out.printf(
                    "%-8s %12s %12s %8s %7s %7s  %s%n",
                    "phase", "median tok/s", "worst tok/s", "threads", "ctx", "runs", "model/dtype");
            for (int ctxLen : contexts) {
                if (ctxLen > m.config().maxPositions()) {
                    ctx.err()
                            .printf(
                                    "skipping context %d: the model's native context is %d%n",
                                    ctxLen, m.config().maxPositions());
                    continue;
                }
                for (EngineBench.Row r :
                        List.of(bench.prefill(ctxLen), bench.decode(Math.max(1, ctxLen - decodeSteps), decodeSteps))) {
                    out.printf(
                            "%-8s %12.1f %12.1f %8d %7d %7d  %s/%s (KV %.1f MiB)%n",
                            r.phase(),
                            r.medianTokPerSec(),
                            r.worstTokPerSec(),
                            threads,
                            r.context(),
                            r.runs(),
                            m.source().getFileName(),
                            dtype,
                            r.kvBytes() / 1048576.0);
                }
            }
            out.flush();
            return ExitCode.OK.code();
        } catch (ModelFormatException e) {
            throw new CliException(ExitCode.INVALID_INPUT, e.getMessage());
        }
    }

    /** The memory policy the options set, or the reason it is not one (exit code 2). */
    private static io.engram.engine.memory.MemorySpec memorySpec(io.engram.topology.options.ResolvedOptions options) {
        try {
            return io.engram.topology.MemoryOptions.spec(options);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCode.INVALID_INPUT, "memory policy: " + e.getMessage());
        }
    }
}
