package io.engram.engine.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.memory.duo.DuoAttention;
import io.engram.engine.calibration.HeadCalibration;
import io.engram.engine.memory.duo.HeadPattern;
import io.engram.engine.memory.retrieval.RetrievalMemory;
import io.engram.engine.memory.retrieval.RetrievalSettings;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.engine.tokenizer.Tokenizer;
import io.engram.engine.tokenizer.Tokenizers;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DuoAttentionTest {
    @TempDir Path tmp;

    private static Map<Long, Integer> visible(AttentionPlan plan, int kvHead) {
        Map<Long, Integer> out = new TreeMap<>();
        for (KvSpan s : plan.spans(kvHead)) {
            for (int slot = s.from(); slot < s.to(); slot++) {
                assertThat(out.put(s.block().seq(slot), s.positionOf(slot))).isNull();
            }
        }
        return out;
    }

    @Test
    void sparsityAndThresholdBinarizeScoresAndFilesRoundTrip() throws Exception {
        float[][] scores = {{0.9f, 0.1f}, {0.3f, 0.7f}, {0.0f, 0.5f}};
        HeadPattern half = HeadPattern.bySparsity(scores, 0.5);
        assertThat(half.isRetrieval(0, 0)).isTrue();
        assertThat(half.isRetrieval(1, 1)).isTrue();
        assertThat(half.isRetrieval(2, 1)).isTrue();
        assertThat(half.retrievalShare()).isEqualTo(0.5);
        assertThat(HeadPattern.bySparsity(scores, 1).retrievalShare()).isZero();
        assertThat(HeadPattern.bySparsity(scores, 0).retrievalShare()).isEqualTo(1.0);
        assertThat(HeadPattern.byThreshold(scores, 0.6).retrievalShare()).isEqualTo(2 / 6.0);
        Path f = tmp.resolve(HeadPattern.FILE_NAME);
        HeadPattern.write(f, scores);
        assertThat(HeadPattern.read(f, 3, 2)).isDeepEqualTo(scores);
        assertThatThrownBy(() -> HeadPattern.read(f, 3, 4)).hasMessageContaining("2 scores").hasMessageContaining("4 KV heads");
        assertThatThrownBy(() -> HeadPattern.read(f, 2, 2)).hasMessageContaining("3 layers");
        Files.writeString(f, "0.5\tx\n0\t0\n0\t0\n");
        assertThatThrownBy(() -> HeadPattern.read(f, 3, 2)).hasMessageContaining("'x' is not a number");
    }

    @Test
    void streamingHeadsSeeSinksAndTheRecentWindowRetrievalHeadsSeeEverything() {
        KvCache c = new KvCache(new CpuBackend(1, false), 2, 8, 8);
        int[] pos = new int[40];
        for (int i = 0; i < 40; i++) {
            pos[i] = i;
        }
        c.append(new int[40], pos, null);
        HeadPattern p = HeadPattern.byThreshold(new float[][] {{1, 0}, {0, 1}}, 0.5);
        DuoAttention duo = new DuoAttention(p, new FullAttention(), 2, 5);
        AttentionPlan step = duo.plan(c, 36, 4, 2);
        AttentionPlan layer0 = duo.planLayer(c, 0, step, null);
        assertThat(visible(layer0, 0)).hasSize(40); // retrieval head: everything at stored positions
        Map<Long, Integer> streaming = visible(layer0, 1);
        assertThat(streaming.keySet()).containsExactly(0L, 1L, 31L, 32L, 33L, 34L, 35L, 36L, 37L, 38L, 39L);
        streaming.forEach((seq, position) -> assertThat(position).isEqualTo(seq.intValue())); // no re-indexing
        AttentionPlan layer1 = duo.planLayer(c, 1, step, null);
        assertThat(visible(layer1, 0)).hasSize(11);
        assertThat(visible(layer1, 1)).hasSize(40);
    }

    @Test
    void withRetrievalMemoryStreamingHeadsUseItsPositionFrame() {
        KvCache c = new KvCache(new CpuBackend(1, false), 1, 8, 4);
        int[] pos = new int[40];
        for (int i = 0; i < 40; i++) {
            pos[i] = i;
        }
        c.append(new int[40], pos, null);
        // a model shape for the retrieval policy: the tiny GQA one has 3 layers and 2 KV heads; use a 1-layer pattern
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir)) {
            RetrievalMemory inner = RetrievalMemory.of(RetrievalSettings.infLlm().withWindow(4, 16).withTopUnits(1), m.config());
            HeadPattern p = HeadPattern.byThreshold(new float[][] {{1, 0}}, 0.5);
            DuoAttention duo = new DuoAttention(p, inner, 2, 6);
            AttentionPlan step = duo.plan(c, 36, 4, 2);
            AttentionPlan layer = duo.planLayer(c, 0, step, null);
            // window starts at 20: recent 30..39 at 10..19; sinks 0, 1 before the frame sit at 0
            Map<Long, Integer> streaming = visible(layer, 1);
            assertThat(streaming.keySet()).containsExactly(0L, 1L, 30L, 31L, 32L, 33L, 34L, 35L, 36L, 37L, 38L, 39L);
            assertThat(streaming.get(0L)).isZero();
            assertThat(streaming.get(30L)).isEqualTo(10);
            assertThat(layer.queryPositions()).containsExactly(16, 17, 18, 19);
        }
    }

    @Test
    void sinksAndWindowCoveringTheStreamGiveFullAttentionLogits() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir); CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 8, 2, false));
            int[] tokens = RetrievalMemoryTest.stream(50);
            float[][] none = new float[m.config().layers()][m.config().kvHeads()];
            HeadPattern allStreaming = HeadPattern.byThreshold(none, 0.5);
            List<float[]> full = new ArrayList<>();
            List<float[]> duo = new ArrayList<>();
            List<float[]> tight = new ArrayList<>();
            t.forward(t.newCache(), tokens, null, new FullAttention(), Transformer.Logits.ALL, (s, l) -> full.add(l.clone()));
            t.forward(t.newCache(), tokens, null, new DuoAttention(allStreaming, new FullAttention(), 4, 100),
                    Transformer.Logits.ALL, (s, l) -> duo.add(l.clone()));
            t.forward(t.newCache(), tokens, null, new DuoAttention(allStreaming, new FullAttention(), 4, 8),
                    Transformer.Logits.ALL, (s, l) -> tight.add(l.clone()));
            for (int i = 0; i < full.size(); i++) {
                assertThat(duo.get(i)).as("position %d", i).isEqualTo(full.get(i));
            }
            assertThat(tight.get(49)).isNotEqualTo(full.get(49));
        }
    }

    @Test
    void calibrationBuildsPasskeyTasksAndScoresEveryHead() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir); CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 64, 2, false));
            Tokenizer tok = Tokenizers.fromHuggingFace(dir);
            HeadCalibration cal = new HeadCalibration(t, tok);
            HeadCalibration.Task task = cal.passkey(300, 0.5, new Random(7));
            StringBuilder answer = new StringBuilder();
            for (int i = task.answerFrom(); i < task.answerTo(); i++) {
                answer.append(tok.decode(new int[] {task.prompt()[i]}, false));
            }
            assertThat(answer.toString()).contains(task.answer());
            assertThat(task.prompt().length).isBetween(200, 400);
            int[] progress = new int[1];
            HeadCalibration.Result r = cal.run(new int[] {120, 200}, new double[] {0.2, 0.8}, 2, 6, true, 1, i -> progress[0] = i);
            assertThat(progress[0]).isEqualTo(2);
            assertThat(r.counted()).isEqualTo(2);
            assertThat(r.scores()).hasNumberOfRows(m.config().layers());
            for (float[] row : r.scores()) {
                assertThat(row).hasSize(m.config().kvHeads());
                for (float v : row) {
                    assertThat(v).isBetween(0f, 1f);
                }
            }
        }
    }
}
