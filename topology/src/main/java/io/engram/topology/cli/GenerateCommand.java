package io.engram.topology.cli;

import io.engram.engine.config.ModelFormatException;
import io.engram.engine.generate.Generation;
import io.engram.engine.generate.Generator;
import io.engram.engine.generate.SamplingOptions;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.model.Transformer;
import io.engram.engine.session.Engine;
import io.engram.engine.tokenizer.StreamingDecoder;
import io.engram.engine.tokenizer.Tokenizer;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/** {@code engram generate}: run the engine on a prompt and stream the tokens to stdout. */
@Command(
        name = "generate",
        description = "Generate text from a prompt with Engram's engine, streaming tokens to stdout.")
public final class GenerateCommand implements Callable<Integer> {

    @ParentCommand
    EngramCli root;

    @Option(names = "--model", required = true, description = "Hugging Face model folder or .gguf file.")
    Path model;

    @Option(names = "--prompt", required = true, description = "The prompt text.")
    String prompt;

    @Option(
            names = "--max-tokens",
            defaultValue = "128",
            description = "Tokens to generate at most (default ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(
            names = "--temperature",
            defaultValue = "0",
            description = "0 for greedy (default), else sampling temperature.")
    double temperature;

    @Option(names = "--top-k", defaultValue = "0", description = "Keep the k most likely tokens (0 = off).")
    int topK;

    @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling threshold (1 = off).")
    double topP;

    @Option(names = "--seed", defaultValue = "0", description = "Sampling seed.")
    long seed;

    @Option(names = "--stop", description = "Stop string (repeatable).")
    List<String> stops = List.of();

    @Option(names = "--threads", defaultValue = "2", description = "CPU threads (default ${DEFAULT-VALUE}).")
    int threads;

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

    @Option(names = "--q8", description = "Requantize float weights to Q8_0 at load.")
    boolean q8;

    @Option(
            names = "--chat",
            description = "Send the prompt as a user message through the model's chat template "
                    + "(tokenizer_config.json of a model folder).")
    boolean chat;

    @Option(names = "--system", description = "System message for --chat.")
    String system;

    @Override
    public Integer call() {
        CliContext ctx = root.context();
        PrintWriter out = ctx.out();
        SamplingOptions options;
        try {
            options = SamplingOptions.greedy(maxTokens)
                    .withSampling(temperature, topK, topP, seed)
                    .withStops(List.of(), stops);
        } catch (IllegalArgumentException e) {
            throw new CliException(ExitCode.INVALID_INPUT, e.getMessage());
        }
        try (Engine engine = Engine.open(Engine.Spec.tool(
                model,
                new io.engram.engine.backend.Backends.DeviceSettings(device, gpuMemoryMb * 1024L * 1024L),
                threads,
                q8))) {
            Tokenizer tok = engine.session().tokenizer();
            Transformer t = engine.transformer();
            io.engram.engine.config.ModelConfig config = engine.config();
            String text = prompt;
            boolean special = true;
            if (chat) {
                java.nio.file.Path cfg = model.resolve("tokenizer_config.json");
                if (!java.nio.file.Files.isRegularFile(cfg)) {
                    throw new CliException(
                            ExitCode.INVALID_INPUT,
                            "--chat needs a model folder with tokenizer_config.json; " + cfg + " does not exist");
                }
                io.engram.engine.tokenizer.chat.ChatTemplate template =
                        io.engram.engine.tokenizer.chat.ChatTemplate.fromTokenizerConfig(cfg);
                List<io.engram.engine.tokenizer.chat.ChatMessage> messages = new java.util.ArrayList<>();
                if (system != null) {
                    messages.add(new io.engram.engine.tokenizer.chat.ChatMessage("system", system));
                }
                messages.add(new io.engram.engine.tokenizer.chat.ChatMessage("user", prompt));
                text = template.render(messages, true);
                special = false; // the template already wrote the special tokens it wants
            }
            int[] ids = tok.encode(text, special);
            ctx.err()
                    .printf(
                            "%s: %s, %d layers, hidden %d, vocab %d; %s; prompt %d tokens%n",
                            model.getFileName(),
                            config.architecture(),
                            config.layers(),
                            config.hiddenSize(),
                            config.vocabSize(),
                            engine.backend().describe(),
                            ids.length);
            StreamingDecoder dec = new StreamingDecoder(tok, true);
            Generation g = new Generator(t, Math.min(config.vocabSize(), tok.vocabSize()))
                    .generate(t.newCache(), ids, null, new FullAttention(), options, dec::accept, (id, piece, lp) -> {
                        out.print(piece);
                        out.flush();
                    });
            out.println();
            out.flush();
            ctx.err()
                    .printf(
                            "%d tokens, stop: %s; prefill %.1f tok/s, decode %.1f tok/s%n",
                            g.tokens().length,
                            g.stopReason(),
                            ids.length / (g.prefillNanos() / 1e9),
                            g.tokens().length / Math.max(1e-9, g.decodeNanos() / 1e9));
            return ExitCode.OK.code();
        } catch (ModelFormatException | io.engram.engine.tokenizer.chat.UnsupportedChatTemplateException e) {
            throw new CliException(ExitCode.INVALID_INPUT, e.getMessage());
        }
    }
}
