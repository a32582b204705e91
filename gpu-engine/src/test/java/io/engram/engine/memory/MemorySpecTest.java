package io.engram.engine.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.config.ModelConfig;
import io.engram.engine.memory.retrieval.EmLlm;
import io.engram.engine.memory.retrieval.InfLlm;
import io.engram.engine.memory.retrieval.RetrievalSettings;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The default policy is bounded, its automatic sizes keep every attended position within the trained context, each
 * policy's spec refuses what it cannot run, and specs survive Java serialization (they travel with stream jobs).
 */
class MemorySpecTest {

    private static ModelConfig model(int maxPositions) {
        return SmallModelConfig.of(maxPositions);
    }

    @Test
    void theDefaultPolicyIsEpisodicMemoryNotFullAttention() {
        MemorySpec d = MemorySpec.defaults();
        assertThat(d.kind()).isEqualTo(MemorySpec.Kind.EMLLM);
        assertThat(d.create(model(1024), null)).isInstanceOf(EmLlm.class);
        assertThat(d.describe(null)).contains("EM-LLM auto init + auto local + auto memory tokens");
        assertThat(d.describe(model(1024)))
                .startsWith("EM-LLM 64 init + 704 local + 256 memory tokens (contiguity 0.30)")
                .contains("modularity refinement from layer 1");
    }

    @Test
    void aLongContextModelGetsThePapersSizes() {
        RetrievalSettings inf = MemorySpec.InfLlm.paper().retrieval(model(32768));
        assertThat(inf.initTokens()).isEqualTo(128);
        assertThat(inf.localTokens()).isEqualTo(4096);
        assertThat(inf.topUnits()).isEqualTo(16);
        assertThat(MemorySpec.EmLlm.paper().retrieval(model(32768)).memoryTokens())
                .isEqualTo(2048);
    }

    @Test
    void aShortContextModelGetsSharesOfItsWindow() {
        ModelConfig tiny = model(1024);
        MemorySpec.Window w = MemorySpec.Window.SIZED_FOR_MODEL.sizedFor(tiny);
        assertThat(w).isEqualTo(new MemorySpec.Window(64, 704, 256));
        assertThat(w.initTokens() + w.localTokens() + w.memoryTokens()).isEqualTo(tiny.maxPositions());
        assertThat(MemorySpec.InfLlm.paper().retrieval(tiny).topUnits()).isEqualTo(2);
        RetrievalSettings r = MemorySpec.EmLlm.paper().retrieval(tiny);
        assertThat(r.localTokens()).isEqualTo(704);
        assertThat(r.memoryTokens()).isEqualTo(256);
        assertThat(r.contiguity()).isEqualTo(0.3);
        assertThat(r.segmentation()).isInstanceOf(RetrievalSettings.Surprise.class);
    }

    @Test
    void setSizesAreKeptAndOnlyAutoOnesAreChosen() {
        assertThat(new MemorySpec.Window(32, MemorySpec.AUTO, MemorySpec.AUTO)
                        .sizedFor(model(1024))
                        .localTokens())
                .as("the window takes what init and memory leave")
                .isEqualTo(1024 - 32 - 256);
        MemorySpec.InfLlm set = new MemorySpec.InfLlm(
                new MemorySpec.Window(32, 300, MemorySpec.AUTO), MemorySpec.AUTO, 32, 4, RankingSpec.DEFAULT);
        RetrievalSettings r = set.retrieval(model(1024));
        assertThat(r.initTokens()).isEqualTo(32);
        assertThat(r.localTokens()).isEqualTo(300);
        assertThat(r.topUnits()).isEqualTo(2);
        assertThat(set.create(model(1024), null)).isInstanceOf(InfLlm.class);
        assertThat(set.describe(model(1024)))
                .isEqualTo(
                        "InfLLM 32 init + 300 local + top-2 units, 32 cached blocks/layer, 2 lexical units per question");
    }

    @Test
    void sirLlmsAutomaticSizesFitTheTrainedContextAndKeepTheReferenceSplitWhereItFits() {
        MemorySpec.SirLlm sir = MemorySpec.SirLlm.defaults();
        // re-indexed from 0: sinks + scored + recent must stay within the positions the model was trained on
        assertThat(sir.sizes(model(1024))).containsExactly(510, 510);
        assertThat(sir.describe(model(1024))).isEqualTo("SirLLM 4 sinks + 510 scored + 510 recent, decay 1.00");
        assertThat(sir.sizes(model(4096))).containsExactly(1000, 1000);
        assertThat(new MemorySpec.SirLlm(4, MemorySpec.AUTO, 300, 1.0).sizes(model(1024)))
                .containsExactly(720, 300);
        assertThat(new MemorySpec.SirLlm(4, 100, MemorySpec.AUTO, 1.0).sizes(model(1024)))
                .containsExactly(100, 920);
        assertThat(new MemorySpec.SirLlm(4, 64, 32, 1.0).sizes(model(1024))).containsExactly(64, 32);
        assertThat(sir.describe(null)).isEqualTo("SirLLM 4 sinks + auto scored + auto recent, decay 1.00");
    }

    @Test
    void specsRefuseWhatTheirPolicyCannotRun() {
        assertThatThrownBy(() -> new MemorySpec.Window(4, 0, 16)).hasMessageContaining("local and memory > 0");
        assertThatThrownBy(
                        () -> new MemorySpec.InfLlm(MemorySpec.Window.SIZED_FOR_MODEL, 0, 32, 4, RankingSpec.DEFAULT))
                .hasMessageContaining("top units");
        MemorySpec.EmLlm em = MemorySpec.EmLlm.paper();
        assertThatThrownBy(() -> new MemorySpec.EmLlm(
                        em.window(), 1.0, 32, 4, 1.0, 8, 128, em.refinement(), -1, RankingSpec.DEFAULT))
                .hasMessageContaining("contiguity");
        assertThatThrownBy(() -> new MemorySpec.EmLlm(
                        em.window(), 0.3, 32, 4, 1.0, 64, 8, em.refinement(), -1, RankingSpec.DEFAULT))
                .hasMessageContaining("event sizes");
        assertThatThrownBy(() -> new MemorySpec.SirLlm(4, 100, 10, 0)).hasMessageContaining("decay");
        assertThatThrownBy(() -> DuoSpec.over(DuoSpec.over(new MemorySpec.Full())))
                .hasMessageContaining("other than itself");
        assertThatThrownBy(() -> DuoSpec.over(MemorySpec.InfLlm.paper()).create(model(1024), null))
                .hasMessageContaining("no head pattern");
    }

    @ParameterizedTest
    @EnumSource(MemorySpec.Kind.class)
    void everyKindHasDefaultsThatSurviveSerialization(MemorySpec.Kind kind) throws Exception {
        MemorySpec spec = MemorySpec.defaults(kind);
        assertThat(spec.kind()).isEqualTo(kind);
        assertThat(spec.create(model(1024), null)).isNotNull();
        MemorySpec duo = DuoSpec.over(spec);
        assertThat(duo.kind()).isEqualTo(kind);
        assertThat(duo.describe(model(1024)))
                .startsWith(spec.describe(model(1024)))
                .contains("DuoAttention");
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(duo);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            assertThat(in.readObject()).isEqualTo(duo);
        }
    }
}
