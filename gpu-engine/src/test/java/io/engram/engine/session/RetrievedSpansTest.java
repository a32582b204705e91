package io.engram.engine.session;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.generate.SamplingOptions;
import io.engram.engine.generate.TokenListener;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.memory.retrieval.RetrievalMemory;
import io.engram.engine.memory.retrieval.RetrievalSettings;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.engine.tokenizer.Tokenizers;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The memory spans an answer reports as retrieved are the ones the policy planned for it, never the question. */
class RetrievedSpansTest {
    @TempDir
    Path tmp;

    static final int BLOCK = 16;

    static List<String> events() {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            out.add("Entry " + i + ": the keeper counted " + (17 * i + 3) + " gulls and " + (5 * i + 1)
                    + " boats today.");
        }
        return out;
    }

    /** RetrievalMemory, recording per layer the units it retrieved at every step of an answer (a transient section). */
    static final class Recording extends io.engram.engine.memory.ForwardingMemoryPolicy {
        final RetrievalMemory retrieval;
        final Map<Integer, Set<RetrievalMemory.Unit>> selected = new HashMap<>();

        Recording(RetrievalMemory inner) {
            super(inner);
            this.retrieval = inner;
        }

        @Override
        public AttentionPlan planLayer(KvCache cache, int layer, AttentionPlan stepPlan, float[] queryMean) {
            AttentionPlan p = inner.planLayer(cache, layer, stepPlan, queryMean);
            if (cache.isTransient()) {
                selected.computeIfAbsent(layer, l -> new HashSet<>()).addAll(retrieval.selected(cache, layer));
            }
            return p;
        }
    }

    @Test
    void infLlmReportsExactlyTheUnitsItRetrievedWithTheirLayerCounts() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(BLOCK, 32, 2, false));
            RetrievalSettings s =
                    RetrievalSettings.infLlm().withWindow(BLOCK, 2 * BLOCK).withTopUnits(1);
            Recording policy = new Recording(RetrievalMemory.of(s, m.config()));
            SessionEngine engine = new SessionEngine(t, Tokenizers.fromHuggingFace(dir), policy, PromptFormat.PLAIN);
            KvCache mem = engine.newMemory();
            List<String> events = events();
            for (int i = 0; i < events.size(); i++) {
                engine.ingest(mem, events.get(i), i);
            }
            long mark = mem.nextSeq();
            List<RetrievalMemory.Unit> units = policy.retrieval.units(mem);
            assertThat(units).as("units packed").hasSizeGreaterThan(4);
            long unitsEnd = units.getLast().end();

            Reply a = engine.answer(
                    mem, "How many boats?", SamplingOptions.greedy(4).withStopAtEos(false), TokenListener.NONE);

            // every span is memory: none reaches the question
            assertThat(a.retrieved()).isNotEmpty().allSatisfy(sp -> {
                assertThat(sp.endSeq()).isLessThanOrEqualTo(mark);
                assertThat(sp.firstSeq()).isLessThan(sp.endSeq());
                assertThat(sp.layers()).isBetween(1, m.config().layers());
            });
            // in the packed region, the spans are exactly the units some layer retrieved, each with the count of
            // layers that retrieved it
            Map<List<Long>, Integer> expected = new HashMap<>();
            for (Set<RetrievalMemory.Unit> perLayer : policy.selected.values()) {
                for (RetrievalMemory.Unit u : perLayer) {
                    expected.merge(List.of(u.start(), u.end()), 1, Integer::sum);
                }
            }
            assertThat(expected).as("retrieved some units").isNotEmpty();
            Set<List<Long>> retrievedUnits = new HashSet<>();
            for (RetrievalMemory.Unit u : units) {
                retrievedUnits.add(List.of(u.start(), u.end()));
            }
            assertThat(expected.keySet()).as("only some units retrieved").hasSizeLessThan(units.size());
            Map<List<Long>, Integer> got = new HashMap<>();
            for (RetrievedSpan sp : a.retrieved()) {
                if (sp.firstSeq() >= s.initTokens() && sp.endSeq() <= unitsEnd) {
                    got.put(List.of(sp.firstSeq(), sp.endSeq()), sp.layers());
                }
            }
            assertThat(got).isEqualTo(expected);
            // the init tokens and the recent tokens before the question are attended by every layer
            assertThat(a.retrieved().getFirst().firstSeq()).isZero();
            assertThat(a.retrieved().getFirst().layers()).isEqualTo(m.config().layers());
            assertThat(a.retrieved().getLast().endSeq()).isEqualTo(mark);
            assertThat(a.retrieved().getLast().layers()).isEqualTo(m.config().layers());
            // each span names the events of its tokens
            for (RetrievedSpan sp : a.retrieved()) {
                assertThat(sp.eventIndices())
                        .isNotEmpty()
                        .allSatisfy(ev -> assertThat(ev).isBetween(0, events.size() - 1));
            }
        }
    }

    @Test
    void fullAttentionRetrievesEveryBlockBeforeTheQuestion() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(BLOCK, 32, 2, false));
            SessionEngine engine =
                    new SessionEngine(t, Tokenizers.fromHuggingFace(dir), new FullAttention(), PromptFormat.PLAIN);
            KvCache mem = engine.newMemory();
            List<String> events = events().subList(0, 4);
            for (int i = 0; i < events.size(); i++) {
                engine.ingest(mem, events.get(i), i);
            }
            long mark = mem.nextSeq();
            Reply a = engine.answer(
                    mem, "How many boats?", SamplingOptions.greedy(3).withStopAtEos(false), TokenListener.NONE);
            List<List<Long>> blocks = new ArrayList<>();
            for (long first = 0; first < mark; first += BLOCK) {
                blocks.add(List.of(first, Math.min(first + BLOCK, mark)));
            }
            assertThat(a.retrieved())
                    .extracting(sp -> List.of(sp.firstSeq(), sp.endSeq()))
                    .containsExactlyElementsOf(blocks);
            assertThat(a.retrieved())
                    .allSatisfy(
                            sp -> assertThat(sp.layers()).isEqualTo(m.config().layers()));
            Set<Integer> covered = new HashSet<>();
            a.retrieved().forEach(sp -> covered.addAll(sp.eventIndices()));
            assertThat(covered).containsExactlyInAnyOrder(0, 1, 2, 3);
        }
    }
}
