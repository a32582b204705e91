package io.engram.topology.cli;

import io.engram.engine.backend.Backends;
import io.engram.engine.calibration.HeadCalibration;
import io.engram.engine.memory.duo.HeadPattern;
import io.engram.engine.session.Engine;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/**
 * {@code engram calibrate-heads}: finds a model's retrieval heads on generated passkey tasks (retrieval-score method)
 * and writes the DuoAttention head pattern next to the model.
 */
@Command(
        name = "calibrate-heads",
        description = {
            "Scores every KV head for copying from the context (retrieval heads) on "
                    + "generated passkey tasks and writes the DuoAttention pattern (duo-heads.tsv) next to the model."
        })
public final class CalibrateHeadsCommand implements Callable<Integer> {

    @ParentCommand
    EngramCli root;

    @Option(names = "--model", required = true, description = "Hugging Face model folder or .gguf file.")
    Path model;

    @Option(names = "--out", description = "Pattern file to write (default: duo-heads.tsv in the model folder).")
    Path outFile;

    @Option(
            names = "--contexts",
            split = ",",
            defaultValue = "1000,2000,4000",
            description = "Task lengths in tokens (default ${DEFAULT-VALUE}).")
    List<Integer> contexts;

    @Option(
            names = "--depths",
            split = ",",
            defaultValue = "0.1,0.3,0.5,0.7,0.9",
            description = "Needle depths (default ${DEFAULT-VALUE}).")
    List<Double> depths;

    @Option(
            names = "--task",
            defaultValue = "PASSKEY",
            description =
                    "Needle task: PASSKEY (instruction models) or STORY (a name in a story, for story models; default ${DEFAULT-VALUE}).")
    HeadCalibration.TaskKind task;

    @Option(names = "--samples", defaultValue = "15", description = "Tasks to run (default ${DEFAULT-VALUE}).")
    int samples;

    @Option(
            names = "--max-new-tokens",
            defaultValue = "12",
            description = "Answer length cap (default ${DEFAULT-VALUE}).")
    int maxNew;

    @Option(
            names = "--count-failed",
            description = "Count tasks the model answers wrongly too (for models too small to answer).")
    boolean countFailed;

    @Option(names = "--threads", defaultValue = "2", description = "CPU threads (default ${DEFAULT-VALUE}).")
    int threads;

    @Option(
            names = "--seed",
            defaultValue = "1",
            description = "Seed of the generated tasks (default ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() throws Exception {
        CliContext ctx = root.context();
        PrintWriter out = ctx.out();
        Path target = outFile != null ? outFile : HeadPattern.besideModel(model);
        try (Engine engine = Engine.open(Engine.Spec.tool(model, Backends.DeviceSettings.cpu(), threads, false))) {
            HeadCalibration cal =
                    new HeadCalibration(engine.transformer(), engine.session().tokenizer());
            HeadCalibration.Result r;
            try (Progress progress = Progress.forContext(ctx, "calibrate-heads", "tasks", null)) {
                r = cal.run(
                        task,
                        contexts.stream().mapToInt(Integer::intValue).toArray(),
                        depths.stream().mapToDouble(Double::doubleValue).toArray(),
                        samples,
                        maxNew,
                        countFailed,
                        seed,
                        i -> progress.update(i, samples, i));
            }
            if (r.counted() == 0) {
                throw new CliException(
                        ExitCode.INVALID_INPUT,
                        "the model answered none of the %d tasks; nothing to score. Use ".formatted(r.samples())
                                + "--count-failed to score copying in every task anyway");
            }
            HeadPattern.write(target, r.scores());
            out.printf(Locale.ROOT, "%d of %d tasks counted; scores per layer (KV heads):%n", r.counted(), r.samples());
            for (int l = 0; l < r.scores().length; l++) {
                StringBuilder sb = new StringBuilder();
                for (float v : r.scores()[l]) {
                    sb.append(String.format(Locale.ROOT, " %.3f", v));
                }
                out.printf("layer %2d:%s%n", l, sb);
            }
            out.printf("wrote %s%n", target);
            out.flush();
            return ExitCode.OK.code();
        }
    }
}
