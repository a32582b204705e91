package io.engram.engine.session;

import static org.assertj.core.api.Assertions.assertThat;

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
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SessionEngineTest {
    @TempDir Path tmp;

    static final List<String> EVENTS = List.of(
            "The lighthouse keeper wrote in her log every evening.",
            "The vault code of the old customs house is 7481.",
            "The children counted 212 gulls and 45 puffins on the cliffs.");

    @Test
    void ingestTagsProvenanceAnswerCitesOnlyIngestedEventsAndLeavesMemoryUnchanged() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir); CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 32, 2, false));
            SessionEngine engine = new SessionEngine(t, Tokenizers.fromHuggingFace(dir), new FullAttention(), PromptFormat.PLAIN);
            KvCache mem = engine.newMemory();
            int total = 0;
            for (int i = 0; i < EVENTS.size(); i++) {
                SessionEngine.Ingested in = engine.ingest(mem, EVENTS.get(i), i);
                assertThat(in.tokens()).isPositive();
                assertThat(in.touchedBlocks()).isNotEmpty().allMatch(bl -> mem.blocks().contains(bl));
                total += in.tokens();
            }
            assertThat(mem.nextSeq()).isEqualTo(total);
            // every token is tagged with its event and a char offset inside that event, but the separators the
            // prompt format puts between events, which are no source's words
            for (KvBlock bl : mem.blocks()) {
                for (int s = 0; s < bl.length(); s++) {
                    if (bl.source(s) == Provenance.NONE) {
                        assertThat(engine.tokenizer().decode(new int[] {bl.token(s)}, true)).as("untagged token").isBlank();
                        continue;
                    }
                    int ev = Provenance.eventIndex(bl.source(s));
                    assertThat(ev).isBetween(0, EVENTS.size() - 1);
                    assertThat(Provenance.charOffset(bl.source(s))).isBetween(0, EVENTS.get(ev).length());
                }
            }
            float[] before = HostBuf.of(mem.blocks().get(mem.blocks().size() - 1).keys(0)).clone();
            int lastLen = mem.blocks().get(mem.blocks().size() - 1).length();
            int blocks = mem.blocks().size();

            Answer a = engine.answer(mem, "What is the vault code?", SamplingOptions.greedy(8).withStopAtEos(false), TokenListener.NONE);
            assertThat(a.generation().tokens()).hasSize(8);
            // the tiny model has 512 embedding rows but its tokenizer 459 tokens: only decodable ids are generated,
            // even when hot sampling would pick the padding rows often
            Answer hot = engine.answer(mem, "Anything?", SamplingOptions.greedy(64).withStopAtEos(false).withSampling(5.0, 0, 1, 1),
                    TokenListener.NONE);
            assertThat(hot.generation().tokens()).hasSize(64);
            for (int id : hot.generation().tokens()) {
                assertThat(id).isLessThan(engine.tokenizer().vocabSize());
            }
            assertThat(a.memoryTokens()).isEqualTo(total);
            assertThat(a.citations()).isNotEmpty();
            double sum = 0;
            for (Citation c : a.citations()) {
                assertThat(c.eventIndex()).isBetween(0, EVENTS.size() - 1);
                assertThat(c.charStart()).isBetween(0, c.charEnd());
                assertThat(c.charEnd()).isLessThanOrEqualTo(EVENTS.get(c.eventIndex()).length() + 1);
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
            Answer again = engine.answer(mem, "What is the vault code?", SamplingOptions.greedy(8).withStopAtEos(false), TokenListener.NONE);
            assertThat(again.generation().tokens()).containsExactly(a.generation().tokens());
            assertThat(again.citations()).isEqualTo(a.citations());
        }
    }

    @Test
    void answersOfABatchOfSessionsEqualTheirAnswersAlone() {
        Path dir = TinyModels.write(tmp.resolve("b"), TinyModels.Variant.QWEN2, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir); CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 32, 2, false));
            SessionEngine engine = new SessionEngine(t, Tokenizers.fromHuggingFace(dir), new FullAttention(), PromptFormat.PLAIN);
            KvCache a = engine.newMemory();
            KvCache c = engine.newMemory();
            engine.ingest(a, EVENTS.get(0), 0);
            engine.ingest(a, EVENTS.get(1), 1);
            engine.ingest(c, EVENTS.get(2), 0);
            SamplingOptions o = SamplingOptions.greedy(6).withStopAtEos(false);
            Answer aloneA = engine.answer(a, "What is the vault code?", o, TokenListener.NONE);
            Answer aloneC = engine.answer(c, "How many gulls?", o.withSampling(0.8, 0, 1, 3), TokenListener.NONE);
            List<Answer> both = engine.answerBatch(List.of(
                    new SessionEngine.Query(a, "What is the vault code?", o, TokenListener.NONE),
                    new SessionEngine.Query(c, "How many gulls?", o.withSampling(0.8, 0, 1, 3), TokenListener.NONE)));
            assertThat(both.get(0).generation().tokens()).containsExactly(aloneA.generation().tokens());
            assertThat(both.get(1).generation().tokens()).containsExactly(aloneC.generation().tokens());
            assertThat(both.get(0).citations()).isEqualTo(aloneA.citations());
            assertThat(both.get(1).citations()).isEqualTo(aloneC.citations());
            assertThat(both.get(1).citations()).allSatisfy(ci -> assertThat(ci.eventIndex()).isZero());
        }
    }
}
