package io.engram.topology.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** {@code bench qa --stream} and {@code bench attribution --examples} end to end on the committed smoke model. */
class QaBenchCliTest {
    static final Path SMOKE = Path.of("..", "gpu-engine", "src", "test", "resources", "engram-smoke");

    /** The CLI harness of {@link EngramCliTest} (stdout and stderr captured, no broker). */
    final EngramCliTest cli = new EngramCliTest();

    int run(String... args) {
        return cli.run(Map.of(), args);
    }

    /** {@code bench qa --stream 2500} on the smoke model and its examples, with {@code more} options. */
    int stream(String facts, String policies, String... more) {
        List<String> args = new ArrayList<>(List.of(
                "bench",
                "qa",
                "--model",
                SMOKE.toString(),
                "--examples",
                SMOKE.resolve("eval_examples.jsonl").toString(),
                "--stream",
                "2500",
                "--facts",
                facts,
                "--policies",
                policies));
        args.addAll(List.of(more));
        return run(args.toArray(String[]::new));
    }

    @Test
    void aStreamWithFactsPlantedAnswersEachOnceAfterIt() {
        int code = stream("4", "full,infllm", "--max-new-tokens", "16");
        assertThat(code).as(cli.err.toString()).isZero();
        assertThat(cli.out.toString())
                .contains("with 4 facts planted")
                .containsPattern("full: \\d of 4 facts answered \\([0-9.]+\\), fact seen in every layer 1\\.00")
                .containsPattern("infllm: \\d of 4 facts answered");
    }

    @Test
    void tooManyFactsIsRefusedWithTheCount() {
        int code = stream("50", "full");
        assertThat(code).isEqualTo(ExitCode.INVALID_INPUT.code());
        assertThat(cli.err.toString()).contains("only 5 facts").contains("50 asked for");
    }

    @Test
    void attributionOfHeldOutFactsAskedInTheirOwnWords() {
        int code = run(
                "bench",
                "attribution",
                "--model",
                SMOKE.toString(),
                "--examples",
                SMOKE.resolve("eval_examples.jsonl").toString(),
                "--facts",
                "3",
                "--lengths",
                "1500",
                "--permutations",
                "1",
                "--candidates",
                "4");
        assertThat(code).as(cli.err.toString()).isZero();
        assertThat(cli.out.toString())
                .contains("3 held-out facts of any skill")
                .containsPattern("\\s+\\d+ fast\\s+3 ")
                .containsPattern("\\s+\\d+ precise\\s+3 ");
    }
}
