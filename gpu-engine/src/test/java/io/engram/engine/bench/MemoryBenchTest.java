package io.engram.engine.bench;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.memory.retrieval.RetrievalMemory;
import io.engram.engine.memory.retrieval.RetrievalSettings;
import io.engram.engine.memory.sirllm.SirLlm;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.engine.tokenizer.Tokenizer;
import io.engram.engine.tokenizer.Tokenizers;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MemoryBenchTest {
    @TempDir
    Path tmp;

    @Test
    void tasksAreSizedToTheTargetAndHoldTheirAnswersAtTheRequestedDepth() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA, DType.F32, 42);
        Tokenizer tok = Tokenizers.fromHuggingFace(dir);
        LongInputTasks tasks = new LongInputTasks(tok);
        for (LongInputTasks.Kind kind : LongInputTasks.Kind.values()) {
            for (double depth : new double[] {0, 0.5, 1}) {
                LongInputTasks.Sample s = tasks.generate(kind, 2000, depth, new Random(3));
                int n = tok.encode(s.prompt(), true).length;
                assertThat(n).as("%s at %.1f: %d tokens", kind, depth, n).isBetween(1500, 2300);
                for (String a : s.answers()) {
                    assertThat(s.prompt()).contains(a);
                }
                if (kind != LongInputTasks.Kind.VARIABLE_TRACKING) {
                    int at = s.prompt().indexOf(s.answers().get(0));
                    double rel = at / (double) s.prompt().length();
                    assertThat(rel).as("%s evidence at depth %.1f", kind, depth).isBetween(depth - 0.15, depth + 0.15);
                }
            }
        }
        assertThat(LongInputTasks.score("the keys are ABCDE and FGHIJ", List.of("abcde", "fghij", "KLMNO")))
                .isEqualTo(2 / 3.0);
    }

    @Test
    void fullAttentionAgreesWithItselfAndBoundedPoliciesHoldLessEngineMemory() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 64, 2, false));
            Tokenizer tok = Tokenizers.fromHuggingFace(dir);
            MemoryBench bench = new MemoryBench(t, tok, 6, 6, 4096);
            List<MemoryBench.Candidate> policies = List.of(
                    new MemoryBench.Candidate("full", new FullAttention()),
                    new MemoryBench.Candidate(
                            "infllm",
                            RetrievalMemory.of(
                                    RetrievalSettings.infLlm()
                                            .withWindow(16, 64)
                                            .withTopUnits(2)
                                            .withCachedBlocks(2),
                                    m.config())),
                    new MemoryBench.Candidate("sirllm", new SirLlm(4, 32, 32, 0.9)),
                    new MemoryBench.Candidate("streaming", new io.engram.engine.memory.streaming.StreamingLlm(4, 64)));
            List<MemoryBench.Row> rows = bench.run(
                    List.of(LongInputTasks.Kind.PASSKEY),
                    new int[] {600},
                    new double[] {0.5},
                    1,
                    policies,
                    1,
                    line -> {});
            assertThat(rows).hasSize(4);
            MemoryBench.Row full = rows.get(0);
            assertThat(full.top1Agreement()).isEqualTo(1.0);
            assertThat(full.meanKl()).isLessThan(1e-9);
            for (MemoryBench.Row r : rows.subList(1, 4)) {
                assertThat(r.peakEngineBytes()).as(r.policy()).isLessThan(full.peakEngineBytes() / 2);
                assertThat(r.top1Agreement()).isBetween(0.0, 1.0);
                assertThat(r.meanKl()).isGreaterThanOrEqualTo(0.0);
                assertThat(r.storeBytes()).isPositive();
            }
        }
    }
}
