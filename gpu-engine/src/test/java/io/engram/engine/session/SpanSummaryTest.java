package io.engram.engine.session;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.generate.SamplingOptions;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.tokenizer.Tokenizers;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * An episode summary is generated from its span's text alone (SessionEngine.summarizeSpan), with the shipped model,
 * whose summary skill restates a span's facts: a fact outside the span never appears in it.
 */
class SpanSummaryTest {

    static final String FIRST =
            "The vault code of the old customs house was 7481. The harbour master kept the key in a "
                    + "drawer of his desk, and nobody else in the town knew where it was.";
    static final String SECOND =
            "On the cliffs the children counted 45 puffins. The lighthouse keeper wrote the number in "
                    + "her log and walked back along the shore before dark.";

    @Test
    void anEpisodeSummarySaysWhatItsSpanSaysAndNothingFromOutsideIt() {
        Path dir = Path.of("..", "models", "engram-tiny").toAbsolutePath().normalize();
        assumeTrue(Files.isRegularFile(dir.resolve("config.json")), "models/engram-tiny is not in this checkout");
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(
                    m.config(), m.weights(), b, EngineSettings.defaults().withThreads(2));
            SessionEngine engine =
                    new SessionEngine(t, Tokenizers.fromHuggingFace(dir), new FullAttention(), PromptFormat.PLAIN);
            KvCache mem = engine.newMemory();
            engine.ingest(mem, FIRST, 0);
            long mid = mem.nextSeq();
            engine.ingest(mem, SECOND, 1);
            long end = mem.nextSeq();
            SamplingOptions greedy = SamplingOptions.greedy(48);
            String first = engine.summarizeSpan(mem, 0, mid, 1024, greedy);
            String second = engine.summarizeSpan(mem, mid, end, 1024, greedy);
            System.out.printf("first span: %s%nsecond span: %s%n", first, second);
            // (asked over the whole memory, this model summarizes the first event: the summary of the second span would
            // not hold its own fact)
            assertThat(first).contains("7481").doesNotContain("45");
            assertThat(second).contains("45").doesNotContain("7481");
            assertThat(mem.nextSeq()).as("summaries leave the memory as it was").isEqualTo(end);
        }
    }
}
