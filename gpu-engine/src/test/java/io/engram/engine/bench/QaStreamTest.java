package io.engram.engine.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** One stream with several facts planted, each asked once after it (bench qa --stream). */
class QaStreamTest {

    private static QaReplay.Example needle(String adjective, String noun, String value, String extra) {
        return new QaReplay.Example(
                "needle",
                256,
                40,
                List.of(
                        "Some filler text about packages.",
                        "The special magic number for the " + adjective + " " + noun + " is " + value + "." + extra),
                "Give the special magic number of the " + adjective + " " + noun + ".",
                "The special magic number of the " + adjective + " " + noun + " is " + value + ".",
                List.of(value),
                null);
    }

    @Test
    void aQuestionsKeyIsWhatItsFactNamesBeyondTheWordsItsSkillShares() {
        List<QaReplay.Example> ex = new ArrayList<>();
        String[] adjectives = {"crooked", "hidden", "quiet", "rusty", "golden", "narrow"};
        String[] nouns = {"quarry", "archive", "lantern", "lagoon"};
        int v = 1000;
        for (String a : adjectives) {
            for (String n : nouns) {
                ex.add(needle(a, n, String.valueOf(v++), ""));
            }
        }
        Keys keys = new Keys(ex);
        assertThat(keys.key(ex.get(0))).isEqualTo("crooked quarry");
        assertThat(keys.unambiguous(ex.get(1), List.of(ex.get(0)))).isTrue();
        // a text that names another fact's key would answer its question too
        QaReplay.Example mentions = needle("quiet", "lagoon", "7777", " The crooked quarry was closed.");
        assertThat(keys.unambiguous(mentions, List.of(ex.get(0)))).isFalse();
        assertThat(keys.unambiguous(ex.get(0), List.of(mentions))).isFalse();
        // the same value twice, or the same question twice
        assertThat(keys.unambiguous(needle("quiet", "lagoon", "1000", ""), List.of(ex.get(0))))
                .isFalse();
        assertThat(keys.unambiguous(needle("crooked", "quarry", "4242", ""), List.of(ex.get(0))))
                .isFalse();
        // a skill whose questions all ask the same thing is planted once
        QaReplay.Example pass1 = new QaReplay.Example(
                "passkey",
                256,
                30,
                List.of("The pass key is 31415."),
                "What is the pass key?",
                "x",
                List.of("31415"),
                null);
        QaReplay.Example pass2 = new QaReplay.Example(
                "passkey",
                256,
                30,
                List.of("The pass key is 27182."),
                "What is the pass key?",
                "x",
                List.of("27182"),
                null);
        // filler that names a planted fact's key (another example's fact about the same thing) is left out
        QaReplay.Filler filler = new QaReplay.Filler(
                List.of(
                        "Everyone knew the gate code of the crooked quarry: it was 5150.",
                        "The crooked path to the quarry is long.",
                        "Some text about packages."),
                List.of(16, 10, 6));
        assertThat(keys.without(filler, List.of(ex.get(0))).pieces())
                .containsExactly("The crooked path to the quarry is long.", "Some text about packages.");
        assertThat(keys.without(filler, List.of(ex.get(0))).tokens()).containsExactly(10, 6);
        Keys withPass = new Keys(List.of(pass1, pass2));
        assertThat(withPass.key(pass1)).isNull();
        assertThat(withPass.unambiguous(pass2, List.of(pass1))).isFalse();
    }

    @Test
    void factsArePlantedAtSpreadDepthsInFillerAndEachIsAskedAfterTheStream() throws Exception {
        Path dir = Path.of(getClass().getResource("/engram-smoke/config.json").toURI())
                .getParent();
        List<QaReplay.Example> examples = QaReplay.read(dir.resolve("eval_examples.jsonl"));
        List<String> skills = List.of("passkey", "needle", "multikey", "vars", "dialogue");
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend backend = new CpuBackend(2, false)) {
            QaStream.Stream s = QaStream.build(examples, skills, 5, 3000, m.tokenizer(), 1);
            assertThat(s.facts()).hasSize(5);
            assertThat(s.tokens()).isBetween(3000L, 3300L);
            Set<String> kinds = new HashSet<>();
            Set<Integer> own = new HashSet<>();
            double depth = 0;
            for (QaStream.Planted f : s.facts()) {
                kinds.add(f.example().kind());
                assertThat(f.depth()).isGreaterThan(depth);
                depth = f.depth();
                assertThat(s.events().subList(f.firstEvent(), f.endEvent()))
                        .isEqualTo(f.example().pieces());
                assertThat((double) f.firstEvent() / s.events().size())
                        .isCloseTo(f.depth(), org.assertj.core.data.Offset.offset(0.1));
                for (int i = f.firstEvent(); i < f.endEvent(); i++) {
                    own.add(i);
                }
            }
            assertThat(kinds)
                    .as("one fact per skill: the smoke file's questions share their words")
                    .hasSize(5);
            Set<String> values = new HashSet<>();
            s.facts().forEach(f -> values.addAll(f.example().values()));
            for (int i = 0; i < s.events().size(); i++) {
                if (!own.contains(i)) {
                    assertThat(values).noneMatch(s.events().get(i)::contains);
                }
            }
            assertThatThrownBy(() -> QaStream.build(examples, skills, 6, 3000, m.tokenizer(), 1))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("only 5 facts");

            AttributionTasks.Session session = AttributionTasks.fromFacts(s);
            assertThat(session.events()).isEqualTo(s.events());
            assertThat(session.questions()).hasSize(5);
            for (int i = 0; i < 5; i++) {
                QaReplay.Example e = s.facts().get(i).example();
                AttributionTasks.Question q = session.questions().get(i);
                assertThat(q.question()).isEqualTo(e.question());
                assertThat(q.answer()).isEqualTo(" " + e.expected());
                assertThat(q.copies())
                        .as("support: where the value stands in the fact's own events")
                        .isNotEmpty()
                        .allSatisfy(c -> assertThat(s.events().get(c.event()).substring(c.charStart(), c.charEnd()))
                                .isEqualTo(e.values().getFirst()));
            }

            Transformer t = new Transformer(m.config(), m.weights(), backend, new EngineSettings(16, 64, 2, false));
            List<Long> read = new ArrayList<>();
            QaStream.Result r = QaStream.run(t, m.tokenizer(), s, "full", new FullAttention(), 24, read::add);
            assertThat(r.answers()).hasSize(5);
            assertThat(r.tokens())
                    .isEqualTo(read.getLast())
                    .isCloseTo(s.tokens(), org.assertj.core.data.Percentage.withPercentage(4));
            assertThat(r.answers())
                    .as("full attention attends to every fact in every layer")
                    .allMatch(QaStream.Answer::seen);
            assertThat(r.seen()).isEqualTo(1.0);
            assertThat(r.peakEngineBytes()).isPositive();
        }
    }
}
