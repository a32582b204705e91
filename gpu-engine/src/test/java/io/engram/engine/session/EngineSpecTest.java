package io.engram.engine.session;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.backend.Backends;
import io.engram.engine.memory.DuoSpec;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.memory.MemorySpec;
import io.engram.engine.memory.duo.DuoAttention;
import io.engram.engine.memory.duo.HeadPattern;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What {@link Engine#open} builds from a spec: the tool defaults, the withers, and the fast tier's head pattern. */
class EngineSpecTest {
    private static final Path MODEL =
            Path.of("..", "models", "engram-tiny").toAbsolutePath().normalize();
    private static final Backends.DeviceSettings CPU = new Backends.DeviceSettings(Backends.Device.CPU, 0);

    @Test
    void toolSpecOpensTheModelWithFullAttentionAndTheDefaultHeadPattern() {
        try (Engine e = Engine.open(Engine.Spec.tool(MODEL, CPU, 1, false))) {
            assertThat(e.config().layers()).isEqualTo(4);
            assertThat(e.model().config()).isEqualTo(e.config());
            assertThat(e.policy()).isInstanceOf(FullAttention.class);
            // engram-tiny ships a calibrated pattern: without a spec'd one the fast tier reads it at the default
            // sparsity
            HeadPattern beside = HeadPattern.bySparsity(
                    HeadPattern.read(HeadPattern.besideModel(MODEL), 4, 2), DuoSpec.DEFAULT_SPARSITY);
            assertThat(e.session().retrievalHeads().retrievalShare()).isEqualTo(beside.retrievalShare());
        }
    }

    @Test
    void withersChangeOnlyTheirField() {
        Engine.Spec base = Engine.Spec.tool(MODEL, CPU, 2, false);
        Engine.Spec changed = base.withBlockSize(32)
                .withPrefillChunk(64)
                .withMemory(new MemorySpec.Streaming(4, 60), Engine.Spec.Format.CONTINUATION, 50);
        assertThat(changed.blockSize()).isEqualTo(32);
        assertThat(changed.prefillChunk()).isEqualTo(64);
        assertThat(changed.memory()).isEqualTo(new MemorySpec.Streaming(4, 60));
        assertThat(changed.format()).isEqualTo(Engine.Spec.Format.CONTINUATION);
        assertThat(changed.segmentWords()).isEqualTo(50);
        assertThat(changed.threads()).isEqualTo(2);
        assertThat(changed.modelDir()).isEqualTo(base.modelDir());
        assertThat(changed.heads()).isNull();
    }

    @Test
    void anExplicitHeadPatternIsReadAtItsSparsity(@TempDir Path tmp) throws Exception {
        Path copy = tmp.resolve("heads.tsv");
        Files.copy(HeadPattern.besideModel(MODEL), copy);
        for (double sparsity : new double[] {0.0, 0.75}) {
            Engine.Spec spec =
                    Engine.Spec.tool(MODEL, CPU, 1, false).withHeads(new Engine.Spec.Heads(copy.toString(), sparsity));
            try (Engine e = Engine.open(spec)) {
                assertThat(e.session().retrievalHeads().retrievalShare())
                        .as("sparsity %s", sparsity)
                        .isEqualTo(1 - sparsity);
            }
        }
    }

    @Test
    void aMissingHeadPatternIsRefusedWithWhereItWasLookedFor() {
        Engine.Spec spec =
                Engine.Spec.tool(MODEL, CPU, 1, false).withHeads(new Engine.Spec.Heads("/nowhere/heads.tsv", 0.5));
        assertThatThrownBy(() -> Engine.open(spec))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("/nowhere/heads.tsv")
                .hasMessageContaining("calibrate-heads");
        assertThatThrownBy(() -> new Engine.Spec.Heads("x.tsv", 1.5)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void duoAttentionBringsItsOwnPattern() {
        Engine.Spec spec = Engine.Spec.tool(MODEL, CPU, 1, false)
                .withMemory(DuoSpec.over(new MemorySpec.Streaming(4, 60)), Engine.Spec.Format.CONTINUATION, 100);
        try (Engine e = Engine.open(spec)) {
            assertThat(e.policy()).isInstanceOf(DuoAttention.class);
            assertThat(e.session().retrievalHeads()).isSameAs(((DuoAttention) e.policy()).pattern());
        }
    }
}
