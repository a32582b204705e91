package io.engram.state.bench;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.memory.retrieval.RetrievalMemory;
import io.engram.engine.memory.retrieval.RetrievalSettings;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.session.PromptFormat;
import io.engram.engine.session.SessionEngine;
import io.engram.engine.tensor.DType;
import io.engram.engine.tokenizer.Tokenizers;
import io.engram.state.codec.KvDType;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The restart bench's restored session is the session that never stopped: blocks read back from RocksDB and the
 * InfLLM policy state decoded from its Avro bytes give the same answer (F32 blocks: exact), as does prefilling again.
 */
class RestartBenchTest {
    @TempDir
    Path tmp;

    @Test
    void aRestoredSessionAnswersAsTheOneThatNeverStopped() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 32, 2, false));
            // a window of 64 tokens: most of the session is packed into units the policy state describes
            RetrievalMemory policy = RetrievalMemory.of(
                    RetrievalSettings.infLlm().withWindow(16, 64).withTopUnits(2), m.config());
            SessionEngine engine = new SessionEngine(t, Tokenizers.fromHuggingFace(dir), policy, PromptFormat.PLAIN);
            List<String> events = RestartBench.events(engine, 600, 40, "The vault code is 7481.", 0.3);
            RestartBench.Row r = RestartBench.run(
                    engine,
                    b,
                    KvDType.F32,
                    "tiny",
                    16,
                    events,
                    "What is the vault code?",
                    6,
                    tmp.resolve("db"),
                    line -> {});
            assertThat(r.tokens()).isGreaterThan(400);
            assertThat(r.storedMiB()).isGreaterThan(0);
            assertThat(r.sameAsHot()).as("restored answer '%s'", r.answer()).isTrue();
            assertThat(r.sameAsPrefilled()).isTrue();
            assertThat(r.restoreMs()).isPositive();
            assertThat(r.prefillMs()).isPositive();
        }
    }
}
