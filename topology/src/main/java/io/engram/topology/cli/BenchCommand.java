package io.engram.topology.cli;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.bench.EngineBench;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.model.Model;
import io.engram.engine.model.ModelFormatException;
import io.engram.engine.model.Transformer;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram bench engine}: prefill and decode throughput of the engine, as a table. {@code engram bench store}:
 * memory-unit write/read throughput and checkpoint growth (see {@link StoreBenchTable}).
 */
@Command(name = "bench", description = "Benchmarks. 'engram bench engine --model DIR' prints prefill and decode tokens/s; "
        + "'engram bench store' memory-unit write/read MB/s (RocksDB store vs Flink keyed state) and checkpoint growth.")
public final class BenchCommand implements Callable<Integer> {

    @ParentCommand
    EngramCli root;

    @Parameters(index = "0", description = "What to benchmark: engine or store.")
    String what;

    @Option(names = "--model", description = "Hugging Face model folder or .gguf file (engine; required).")
    Path model;

    @Option(names = "--threads", defaultValue = "2", description = "CPU threads (default ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--contexts", split = ",", defaultValue = "128,512", description = "Context lengths (default ${DEFAULT-VALUE}).")
    List<Integer> contexts;

    @Option(names = "--decode-steps", defaultValue = "32", description = "Decode steps per run (default ${DEFAULT-VALUE}).")
    int decodeSteps;

    @Option(names = "--runs", defaultValue = "3", description = "Measured runs per row (default ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--q8", description = "Requantize float weights to Q8_0 at load.")
    boolean q8;

    @picocli.CommandLine.Mixin
    StoreBenchTable store = new StoreBenchTable();

    @Override
    public Integer call() {
        CliContext ctx = root.context();
        if (what.equals("store")) {
            return store.run(ctx, runs);
        }
        if (!what.equals("engine")) {
            throw new CliException(ExitCode.INVALID_INPUT, "unknown benchmark '" + what + "'; available: engine, store");
        }
        if (model == null) {
            throw new CliException(ExitCode.INVALID_INPUT, "bench engine needs --model DIR_OR_GGUF");
        }
        PrintWriter out = ctx.out();
        try (Model m = Model.open(model); CpuBackend backend = new CpuBackend(threads, q8)) {
            Transformer t = new Transformer(m.config(), m.weights(), backend, EngineSettings.defaults().withThreads(threads));
            EngineBench bench = new EngineBench(t, 1, runs);
            String dtype = m.weights().layers()[0].wq().dtype() + (q8 ? "->Q8_0" : "");
            out.printf("machine: %d cpus, JDK %s, %s%n", Runtime.getRuntime().availableProcessors(),
                    Runtime.version(), backend.describe());
            out.printf("%-8s %12s %12s %8s %7s %7s  %s%n", "phase", "median tok/s", "worst tok/s", "threads", "ctx", "runs", "model/dtype");
            for (int ctxLen : contexts) {
                if (ctxLen > m.config().maxPositions()) {
                    ctx.err().printf("skipping context %d: the model's native context is %d%n", ctxLen, m.config().maxPositions());
                    continue;
                }
                for (EngineBench.Row r : List.of(bench.prefill(ctxLen), bench.decode(Math.max(1, ctxLen - decodeSteps), decodeSteps))) {
                    out.printf("%-8s %12.1f %12.1f %8d %7d %7d  %s/%s (KV %.1f MiB)%n", r.phase(), r.medianTokPerSec(),
                            r.worstTokPerSec(), threads, r.context(), r.runs(), m.source().getFileName(), dtype, r.kvBytes() / 1048576.0);
                }
            }
            out.flush();
            return ExitCode.OK.code();
        } catch (ModelFormatException e) {
            throw new CliException(ExitCode.INVALID_INPUT, e.getMessage());
        }
    }
}
