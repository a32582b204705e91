package io.engram.engine.bench;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.session.PromptFormat;
import io.engram.engine.session.SessionEngine;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The QA evaluation that training/engram_train/evaluate.py ran with transformers on the committed smoke export,
 * replayed through the engine: the engine builds exactly the token sequence the training code built (content events
 * piece by piece, then the question), and its greedy answers equal the reference's.
 */
class QaReplayTest {

    @Test
    void engineSeesTheTrainingTokenizationAndAgreesWithTheReference() throws Exception {
        Path dir = Path.of(getClass().getResource("/engram-smoke/config.json").toURI())
                .getParent();
        List<QaReplay.Example> examples = QaReplay.read(dir.resolve("eval_examples.jsonl"));
        assertThat(examples).hasSizeGreaterThanOrEqualTo(10);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend backend = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), backend, new EngineSettings(16, 64, 2, false));
            SessionEngine engine = new SessionEngine(t, m.tokenizer(), new FullAttention(), PromptFormat.PLAIN);
            for (QaReplay.Example ex : examples) {
                KvCache memory = engine.newMemory();
                for (int i = 0; i < ex.pieces().size(); i++) {
                    engine.ingest(memory, ex.pieces().get(i), i);
                }
                int question = m.tokenizer().encode(PromptFormat.PLAIN.question(ex.question(), false), false).length;
                assertThat(memory.nextSeq() + question)
                        .as("prompt tokens of a %s example", ex.kind())
                        .isEqualTo(ex.tokens());
            }
            List<QaReplay.Row> rows = QaReplay.run(
                    t,
                    m.tokenizer(),
                    examples,
                    Map.<String, MemoryPolicy>of("full", new FullAttention()),
                    48,
                    done -> {});
            for (QaReplay.Row r : rows) {
                assertThat(r.peakEngineBytes()).isPositive();
                assertThat(r.prefillMsPerToken()).isPositive();
                assertThat(r.decodeMsPerToken()).isPositive();
                assertThat(r.agreement())
                        .as("greedy answers, engine vs transformers, %s@%d", r.kind(), r.length())
                        .isEqualTo(1.0);
            }
        }
    }

    @Test
    void anAnswerIsRightWhenItHoldsTheValueOrRefusesWhenItShould() {
        QaReplay.Example code = new QaReplay.Example(
                "reading",
                256,
                100,
                List.of("x"),
                "What is the vault code?",
                "The vault code was 7481.",
                List.of("7481"),
                null);
        assertThat(code.correct("The vault code was 7481.")).isTrue();
        assertThat(code.correct(" The vault code of the house was 7481, on page 417."))
                .isTrue();
        assertThat(code.correct("The vault code was 417.")).isFalse();
        assertThat(code.correct("I don't know. 7481")).isFalse();
        assertThat(code.correct(null)).isFalse();
        QaReplay.Example none = new QaReplay.Example(
                "refusal",
                256,
                100,
                List.of("x"),
                "What is the dog's name?",
                QaReplay.REFUSAL,
                List.of(QaReplay.REFUSAL),
                null);
        assertThat(none.correct("I don't know.")).isTrue();
        assertThat(none.correct("The dog is called Rex.")).isFalse();
        QaReplay.Example summary = new QaReplay.Example(
                "summary",
                256,
                100,
                List.of("x"),
                "Summarize the text above.",
                "The code is 7481. The keeper counted 45 puffins.",
                List.of("7481", "45"),
                null);
        assertThat(summary.correct("The code is 7481. The keeper counted 45 puffins."))
                .isTrue();
        assertThat(summary.correct("The code is 7481.")).isFalse();
    }

    @Test
    void paddingSetsEachExampleInFillerThatHoldsNoValueAtDepthsInTurn() throws Exception {
        Path dir = Path.of(getClass().getResource("/engram-smoke/config.json").toURI())
                .getParent();
        List<QaReplay.Example> examples = QaReplay.read(dir.resolve("eval_examples.jsonl"));
        try (Model m = Model.openHuggingFace(dir)) {
            String kind = examples.get(0).kind();
            List<QaReplay.Example> padded = QaReplay.padded(examples, List.of(kind), 3, 2000, m.tokenizer(), 1);
            long native_ = examples.stream().filter(e -> e.kind().equals(kind)).count();
            assertThat(padded)
                    .hasSize((int) Math.min(3, native_))
                    .allSatisfy(e -> assertThat(e.kind()).isEqualTo(kind));
            java.util.Set<String> values = new java.util.HashSet<>();
            examples.forEach(e -> values.addAll(e.values()));
            values.remove(QaReplay.REFUSAL);
            for (int i = 0; i < padded.size(); i++) {
                QaReplay.Example p = padded.get(i);
                QaReplay.Example own = examples.stream()
                        .filter(e -> e.question().equals(p.question())
                                && e.expected().equals(p.expected()))
                        .findFirst()
                        .orElseThrow();
                assertThat(p.length()).isEqualTo(2000);
                int at = java.util.Collections.indexOfSubList(p.pieces(), own.pieces());
                assertThat(at).as("the example's pieces, in order").isNotNegative();
                int after = p.pieces().size() - at - own.pieces().size();
                switch (i % 3) {
                    case 0 -> assertThat(at).as("depth 0").isZero();
                    case 1 ->
                        assertThat(at)
                                .as("depth 0.5")
                                .isPositive()
                                .isCloseTo(after, org.assertj.core.data.Offset.offset(1));
                    default -> assertThat(after).as("depth 1").isZero();
                }
                int tokens = 0;
                for (int j = 0; j < p.pieces().size(); j++) {
                    String piece = p.pieces().get(j);
                    tokens += m.tokenizer().encode(piece, false).length;
                    if (j < at || j >= at + own.pieces().size()) {
                        assertThat(values).noneMatch(piece::contains);
                    }
                }
                assertThat(tokens).isBetween(1500, 2600);
            }
            assertThat(QaReplay.padded(examples, List.of(), 0, 0, m.tokenizer(), 1))
                    .isEqualTo(examples);
        }
    }
}
