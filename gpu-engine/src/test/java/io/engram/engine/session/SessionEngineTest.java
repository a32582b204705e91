package io.engram.engine.session;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.attribution.Provenance;
import io.engram.engine.attribution.Segment;
import io.engram.engine.backend.HostBuf;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.generate.SamplingOptions;
import io.engram.engine.generate.TokenListener;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.engine.tokenizer.Tokenizers;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SessionEngineTest {
    @TempDir
    Path tmp;

    static final List<String> EVENTS = List.of(
            "The lighthouse keeper wrote in her log every evening.",
            "The vault code of the old customs house is 7481.",
            "The children counted 212 gulls and 45 puffins on the cliffs.");

    @Test
    void ingestTagsProvenanceAnswerCitesOnlyIngestedEventsAndLeavesMemoryUnchanged() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 32, 2, false));
            SessionEngine engine =
                    new SessionEngine(t, Tokenizers.fromHuggingFace(dir), new FullAttention(), PromptFormat.PLAIN);
            KvCache mem = engine.newMemory();
            int total = 0;
            for (int i = 0; i < EVENTS.size(); i++) {
                SessionEngine.Ingested in = engine.ingest(mem, EVENTS.get(i), i);
                assertThat(in.tokens()).isPositive();
                assertThat(in.touchedBlocks())
                        .isNotEmpty()
                        .allMatch(bl -> mem.blocks().contains(bl));
                total += in.tokens();
            }
            assertThat(mem.nextSeq()).isEqualTo(total);
            // every token is tagged with its event and a char offset inside that event, but the separators the
            // prompt format puts between events, which are no source's words
            for (KvBlock bl : mem.blocks()) {
                for (int s = 0; s < bl.length(); s++) {
                    if (bl.source(s) == Provenance.NONE) {
                        assertThat(engine.tokenizer().decode(new int[] {bl.token(s)}, true))
                                .as("untagged token")
                                .isBlank();
                        continue;
                    }
                    int ev = Provenance.eventIndex(bl.source(s));
                    assertThat(ev).isBetween(0, EVENTS.size() - 1);
                    assertThat(Provenance.charOffset(bl.source(s)))
                            .isBetween(0, EVENTS.get(ev).length());
                }
            }
            float[] before = HostBuf.of(
                            mem.blocks().get(mem.blocks().size() - 1).keys(0))
                    .clone();
            int lastLen = mem.blocks().get(mem.blocks().size() - 1).length();
            int blocks = mem.blocks().size();

            Reply a = engine.answer(
                    mem, "What is the vault code?", SamplingOptions.greedy(8).withStopAtEos(false), TokenListener.NONE);
            assertThat(a.generation().tokens()).hasSize(8);
            // the tiny model has 512 embedding rows but its tokenizer 459 tokens: only decodable ids are generated,
            // even when hot sampling would pick the padding rows often
            Reply hot = engine.answer(
                    mem,
                    "Anything?",
                    SamplingOptions.greedy(64).withStopAtEos(false).withSampling(5.0, 0, 1, 1),
                    TokenListener.NONE);
            assertThat(hot.generation().tokens()).hasSize(64);
            for (int id : hot.generation().tokens()) {
                assertThat(id).isLessThan(engine.tokenizer().vocabSize());
            }
            assertThat(a.memoryTokens()).isEqualTo(total);
            assertThat(a.citations()).isNotEmpty();
            double sum = 0;
            for (AttendedSegment c : a.citations()) {
                assertThat(c.eventIndex()).isBetween(0, EVENTS.size() - 1);
                assertThat(c.charStart()).isBetween(0, c.charEnd());
                assertThat(c.charEnd())
                        .isLessThanOrEqualTo(EVENTS.get(c.eventIndex()).length() + 1);
                sum += c.score();
            }
            assertThat(sum).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-6));
            // the question and answer were not kept
            assertThat(mem.nextSeq()).isEqualTo(total);
            assertThat(mem.blocks()).hasSize(blocks);
            KvBlock last = mem.blocks().get(blocks - 1);
            assertThat(last.length()).isEqualTo(lastLen);
            float[] after = HostBuf.of(last.keys(0));
            for (int i = 0; i < lastLen * mem.kvDim(); i++) {
                assertThat(after[i]).isEqualTo(before[i]);
            }
            // asking again gives the same answer (deterministic, memory intact)
            Reply again = engine.answer(
                    mem, "What is the vault code?", SamplingOptions.greedy(8).withStopAtEos(false), TokenListener.NONE);
            assertThat(again.generation().tokens())
                    .containsExactly(a.generation().tokens());
            assertThat(again.citations()).isEqualTo(a.citations());
        }
    }

    @Test
    void answersOfABatchOfSessionsEqualTheirAnswersAlone() {
        Path dir = TinyModels.write(tmp.resolve("b"), TinyModels.Variant.QWEN2, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 32, 2, false));
            SessionEngine engine =
                    new SessionEngine(t, Tokenizers.fromHuggingFace(dir), new FullAttention(), PromptFormat.PLAIN);
            KvCache a = engine.newMemory();
            KvCache c = engine.newMemory();
            engine.ingest(a, EVENTS.get(0), 0);
            engine.ingest(a, EVENTS.get(1), 1);
            engine.ingest(c, EVENTS.get(2), 0);
            SamplingOptions o = SamplingOptions.greedy(6).withStopAtEos(false);
            Reply aloneA = engine.answer(a, "What is the vault code?", o, TokenListener.NONE);
            Reply aloneC = engine.answer(c, "How many gulls?", o.withSampling(0.8, 0, 1, 3), TokenListener.NONE);
            List<Reply> both = engine.answerBatch(List.of(
                    new SessionEngine.Query(a, "What is the vault code?", o, TokenListener.NONE),
                    new SessionEngine.Query(c, "How many gulls?", o.withSampling(0.8, 0, 1, 3), TokenListener.NONE)));
            assertThat(both.get(0).generation().tokens())
                    .containsExactly(aloneA.generation().tokens());
            assertThat(both.get(1).generation().tokens())
                    .containsExactly(aloneC.generation().tokens());
            assertThat(both.get(0).citations()).isEqualTo(aloneA.citations());
            assertThat(both.get(1).citations()).isEqualTo(aloneC.citations());
            assertThat(both.get(1).citations())
                    .allSatisfy(ci -> assertThat(ci.eventIndex()).isZero());
        }
    }

    /** Paragraphs with quoted speech, long words and a long run without a sentence end. */
    static final List<String> STORY = List.of(
            "One day, a big brown dog ran into the park. The dog saw the red ball and wanted to play too. Lily cried "
                    + "and said, \"Come back, dog! That is my ball!\" But the dog did not stop.",
            "Lily's friend Tom saw her cry. He said, \"Don't be sad, Lily. I will help you find your ball.\" They "
                    + "searched underneath the enormous bushes, behind the slippery rocks, beside the sparkling fountain, "
                    + "around the extraordinarily overgrown vegetable garden and everywhere else they could remember "
                    + "visiting together during that wonderful afternoon until they finally discovered it.",
            "The next morning, Lily saw the brown dog again. This time the dog was wagging his tail. He brought her a "
                    + "stick. Lily laughed and threw the stick. The dog ran to get it and came back.");

    static final int SEGMENT_WORDS = 6;

    /**
     * Segments cut events between words only (at a sentence end after the word target, or at twice it), and the
     * questions and summaries asked between events (as the session operator asks them) leave them as they were: the
     * fast tier cites exactly these segments.
     */
    @Test
    void segmentsCutBetweenWordsAndStayTheSameAcrossQuestionsAndSummaries() {
        Path dir = TinyModels.write(tmp.resolve("s"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 32, 2, false));
            SessionEngine engine = new SessionEngine(
                    t, Tokenizers.fromHuggingFace(dir), new FullAttention(), PromptFormat.PLAIN, SEGMENT_WORDS);
            SamplingOptions greedy = SamplingOptions.greedy(8).withStopAtEos(false);
            KvCache mem = engine.newMemory();
            List<Segment> earlier = List.of();
            List<String> summaries = new ArrayList<>();
            for (int i = 0; i < STORY.size(); i++) {
                engine.ingest(mem, STORY.get(i), i);
                List<Segment> segs = engine.segmenter().segments(mem);
                assertCutsBetweenWords(segs);
                assertSameSegments(
                        segs.subList(0, earlier.size()), earlier); // later events leave earlier segments alone

                Reply a = engine.answer(mem, "Who took the ball?", greedy, TokenListener.NONE);
                assertSameSegments(a.segments(), segs);
                assertThat(a.citations()).isNotEmpty().allSatisfy(c -> {
                    Segment s = a.segments().get(c.segment());
                    assertThat(List.of(c.eventIndex(), c.charStart(), c.charEnd()))
                            .as("citation of segment %d", c.segment())
                            .containsExactly(s.eventIndex(), s.charStart(), s.charEnd());
                });
                // an episode summary over the memory, then one over the summaries so far on a memory of its own
                summaries.add(engine.answer(
                                mem, "Summarize the most recent part of the text above.", greedy, TokenListener.NONE)
                        .text());
                engine.summarize(summaries, 256, greedy);
                assertSameSegments(engine.segmenter().segments(mem), segs);
                assertSameSegments(
                        engine.trace(mem, "Where was the ball?", a.generation().tokens())
                                .segments(),
                        segs);
                earlier = segs;
            }
            assertThat(earlier).as("events are cut into several segments").hasSizeGreaterThan(2 * STORY.size());
        }
    }

    /**
     * Every segment starts at its event's start or at a word (a white space or the char after one), and a segment that
     * is not its event's last ends at a sentence end (closing quotes included) or has at least twice the word target.
     */
    static void assertCutsBetweenWords(List<Segment> segs) {
        for (int i = 0; i < segs.size(); i++) {
            Segment s = segs.get(i);
            String text = STORY.get(s.eventIndex());
            int at = s.charStart();
            assertThat(at == 0
                            || Character.isWhitespace(text.charAt(at))
                            || Character.isWhitespace(text.charAt(at - 1)))
                    .as(
                            "segment %d of event %d starts at a word, not inside one: ...%s|%s",
                            i,
                            s.eventIndex(),
                            text.substring(Math.max(0, at - 12), at),
                            text.substring(at, Math.min(text.length(), at + 12)))
                    .isTrue();
            if (i + 1 < segs.size() && segs.get(i + 1).eventIndex() == s.eventIndex()) {
                String cut = text.substring(s.charStart(), segs.get(i + 1).charStart())
                        .strip();
                String end = cut.replaceAll("[\"')]+$", "");
                boolean sentence = end.endsWith(".") || end.endsWith("!") || end.endsWith("?");
                assertThat(sentence || cut.split("\\s+").length >= 2 * SEGMENT_WORDS)
                        .as("segment %d ends at a sentence end or at twice the word target: %s", i, cut)
                        .isTrue();
                assertThat(cut.split("\\s+").length)
                        .as("segment %d has the word target: %s", i, cut)
                        .isGreaterThanOrEqualTo(SEGMENT_WORDS);
            } else {
                assertThat(s.charEnd())
                        .as("the event's last segment reaches its end")
                        .isGreaterThanOrEqualTo(text.length());
            }
        }
    }

    static void assertSameSegments(List<Segment> actual, List<Segment> expected) {
        assertThat(actual).hasSameSizeAs(expected);
        for (int i = 0; i < expected.size(); i++) {
            Segment a = actual.get(i);
            Segment e = expected.get(i);
            assertThat(List.of(a.index(), a.eventIndex(), a.charStart(), a.charEnd(), a.firstSeq()))
                    .as("segment %d", i)
                    .containsExactly(e.index(), e.eventIndex(), e.charStart(), e.charEnd(), e.firstSeq());
            assertThat(a.tokens()).as("tokens of segment %d", i).containsExactly(e.tokens());
        }
    }
}
