package io.engram.engine.memory;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.RopeStyle;
import io.engram.engine.memory.retrieval.EmLlm;
import io.engram.engine.memory.retrieval.InfLlm;
import io.engram.engine.memory.retrieval.RetrievalSettings;
import io.engram.engine.config.Architecture;
import io.engram.engine.config.ModelConfig;
import io.engram.engine.config.RopeScaling;
import org.junit.jupiter.api.Test;

/** The default policy is bounded, and its automatic sizes keep every attended position within the trained context. */
class MemorySettingsTest {

    private static ModelConfig model(int maxPositions) {
        return new ModelConfig("m", Architecture.LLAMA, 64, 128, 2, 4, 2, 16, 256, maxPositions, 1e-5f, 10000,
                new RopeScaling.None(), RopeStyle.HALF, true, false, 1, new int[] {2});
    }

    @Test
    void theDefaultPolicyIsEpisodicMemoryNotFullAttention() {
        MemorySettings d = MemorySettings.defaults();
        assertThat(d.policy()).isEqualTo(MemorySettings.Kind.EMLLM);
        assertThat(d.create(model(1024), null)).isInstanceOf(EmLlm.class);
        assertThat(d.describe()).contains("EM-LLM auto init + auto local + auto memory tokens");
    }

    @Test
    void aLongContextModelGetsThePapersSizes() {
        MemorySettings s = MemorySettings.defaults().sizedFor(model(32768));
        assertThat(s.initTokens()).isEqualTo(128);
        assertThat(s.localTokens()).isEqualTo(4096);
        assertThat(s.memoryTokens()).isEqualTo(2048);
        assertThat(s.topUnits()).isEqualTo(16);
    }

    @Test
    void aShortContextModelGetsSharesOfItsWindow() {
        ModelConfig tiny = model(1024);
        MemorySettings s = MemorySettings.defaults().sizedFor(tiny);
        assertThat(s.initTokens()).isEqualTo(64);
        assertThat(s.localTokens()).isEqualTo(704);
        assertThat(s.memoryTokens()).isEqualTo(256);
        assertThat(s.topUnits()).isEqualTo(2);
        assertThat(s.initTokens() + s.localTokens() + s.memoryTokens()).isEqualTo(tiny.maxPositions());
        RetrievalSettings r = MemorySettings.defaults().retrieval(tiny);
        assertThat(r.localTokens()).isEqualTo(704);
        assertThat(r.memoryTokens()).isEqualTo(256);
        assertThat(r.segmentation()).isInstanceOf(RetrievalSettings.Surprise.class);
    }

    @Test
    void setSizesAreKeptAndOnlyAutoOnesAreChosen() {
        MemorySettings set = MemorySettings.defaults().withPolicy(MemorySettings.Kind.INFLLM).withWindow(32, 300);
        assertThat(MemorySettings.defaults().withWindow(32, MemorySettings.AUTO).sizedFor(model(1024)).localTokens())
                .as("the window takes what init and memory leave").isEqualTo(1024 - 32 - 256);
        MemorySettings s = set.sizedFor(model(1024));
        assertThat(s.initTokens()).isEqualTo(32);
        assertThat(s.localTokens()).isEqualTo(300);
        assertThat(s.topUnits()).isEqualTo(2);
        assertThat(set.create(model(1024), null)).isInstanceOf(InfLlm.class);
        assertThat(set.retrieval(model(1024)).topUnits()).isEqualTo(2);
    }
}
