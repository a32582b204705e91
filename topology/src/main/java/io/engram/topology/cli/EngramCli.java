package io.engram.topology.cli;

import io.engram.topology.EngramOptions;
import io.engram.topology.SessionStageFactory.StageUnavailableException;
import io.engram.topology.options.ConfigException;
import io.engram.topology.options.ResolvedOptions;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/**
 * {@code engram}: the command line of Engram. One class per subcommand; each returns an {@link ExitCode}. Results go to
 * {@link CliContext#out()}, everything else to {@link CliContext#err()}.
 */
@Command(
        name = "engram",
        mixinStandardHelpOptions = true,
        version = "engram 0.1.0",
        description = "Unbounded, durable LLM memory over event streams.",
        subcommands = {
            ProduceCommand.class,
            AskCommand.class,
            TailCommand.class,
            ConfigCommand.class,
            GenerateCommand.class,
            BenchCommand.class,
            SubmitCommand.class,
            StateCommand.class,
            RunCommand.class,
            StatusCommand.class,
            CancelCommand.class,
            SavepointCommand.class,
            TopicsCommand.class,
            CalibrateHeadsCommand.class,
            ExplainCommand.class
        })
public final class EngramCli implements Runnable {

    @Option(
            names = "--config",
            scope = ScopeType.INHERIT,
            paramLabel = "FILE",
            description = "Properties file of engram.* options (default: $ENGRAM_CONFIG, if set).")
    Path configFile;

    @Option(
            names = {"-D", "--set"},
            scope = ScopeType.INHERIT,
            paramLabel = "KEY=VALUE",
            description = "Set an option (see 'engram config list'); wins over environment and config file.")
    Map<String, String> settings = new LinkedHashMap<>();

    @Option(
            names = {"-v", "--verbose"},
            scope = ScopeType.INHERIT,
            description = "Print causes and stack traces of errors.")
    boolean verbose;

    private final CliContext context;

    public EngramCli(CliContext context) {
        this.context = context;
    }

    public static void main(String[] args) {
        PrintWriter out = new PrintWriter(System.out, true, StandardCharsets.UTF_8);
        PrintWriter err = new PrintWriter(System.err, true, StandardCharsets.UTF_8);
        CompletableFuture<Void> stop = new CompletableFuture<>();
        CompletableFuture<Void> stopped = new CompletableFuture<>();
        Runtime.getRuntime()
                .addShutdownHook(new Thread(
                        () -> {
                            stop.complete(null);
                            try {
                                stopped.get(30, TimeUnit.SECONDS); // let run/tail close what they opened
                            } catch (Exception e) {
                                // exiting anyway
                            }
                        },
                        "engram-shutdown"));
        CliContext context = new CliContext(
                out,
                err,
                System.getenv(),
                System.in,
                System.console() != null,
                io.engram.topology.EngineSessionStage::from,
                stop);
        int code = new EngramCli(context).execute(args);
        stopped.complete(null);
        out.flush();
        err.flush();
        System.exit(code);
    }

    /** Runs the command line {@code args} and returns the exit code. */
    public int execute(String... args) {
        return commandLine().execute(args);
    }

    /** The picocli command line, with injected writers and Engram's exit-code mapping. */
    public CommandLine commandLine() {
        CommandLine cl = new CommandLine(this);
        withHelp(cl);
        cl.setOut(context.out());
        cl.setErr(context.err());
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setParameterExceptionHandler((ex, args) -> {
            context.err().println("engram: " + ex.getMessage());
            context.err().println("try: " + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help");
            context.err().flush();
            return ExitCode.INVALID_INPUT.code();
        });
        cl.setExecutionExceptionHandler((ex, commandLine, parseResult) -> {
            ExitCode code = exitCodeOf(ex);
            context.err().println("engram: " + ex.getMessage());
            if (verbose) {
                ex.printStackTrace(context.err());
            } else if (code == ExitCode.INTERNAL) {
                context.err().println("(run again with --verbose for the stack trace)");
            }
            context.err().flush();
            return code.code();
        });
        return cl;
    }

    /** Gives every command and subcommand the standard {@code -h/--help} (and {@code -V/--version}). */
    private static void withHelp(CommandLine command) {
        if (!command.getCommandSpec().mixinStandardHelpOptions()) {
            command.getCommandSpec().mixinStandardHelpOptions(true);
        }
        command.getSubcommands().values().forEach(EngramCli::withHelp);
    }

    static ExitCode exitCodeOf(Throwable ex) {
        return switch (ex) {
            case CliException c -> c.exitCode();
            case ConfigException c -> ExitCode.INVALID_INPUT;
            case StageUnavailableException s -> ExitCode.UNAVAILABLE;
            case io.engram.engine.backend.BackendException b -> ExitCode.UNAVAILABLE; // no GPU, driver or kernels
            default -> ExitCode.INTERNAL;
        };
    }

    @Override
    public void run() {
        throw new CliException(
                ExitCode.INVALID_INPUT, "name a command (produce, ask, tail, config, run); engram --help lists them");
    }

    CliContext context() {
        return context;
    }

    /**
     * Options resolved from {@code --set} (plus {@code commandFlags}, which win), the environment and the config file.
     *
     * @throws ConfigException on unknown keys or bad values
     */
    ResolvedOptions options(Map<String, String> commandFlags) {
        Map<String, String> cli = new LinkedHashMap<>(settings);
        cli.putAll(commandFlags);
        return EngramOptions.resolve(cli, context.env(), configFile);
    }
}
