package io.engram.engine.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.calibration.HeadCalibration;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.memory.duo.DuoAttention;
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
    @TempDir
    Path tmp;

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
        assertThatThrownBy(() -> HeadPattern.read(f, 3, 4))
                .hasMessageContaining("2 scores")
                .hasMessageContaining("4 KV heads");
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
            RetrievalMemory inner = RetrievalMemory.of(
                    RetrievalSettings.infLlm().withWindow(4, 16).withTopUnits(1), m.config());
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
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 8, 2, false));
            int[] tokens = RetrievalMemoryTest.stream(50);
            float[][] none = new float[m.config().layers()][m.config().kvHeads()];
            HeadPattern allStreaming = HeadPattern.byThreshold(none, 0.5);
            List<float[]> full = new ArrayList<>();
            List<float[]> duo = new ArrayList<>();
            List<float[]> tight = new ArrayList<>();
            t.forward(
                    t.newCache(),
                    tokens,
                    null,
                    new FullAttention(),
                    Transformer.Logits.ALL,
                    (s, l) -> full.add(l.clone()));
            t.forward(
                    t.newCache(),
                    tokens,
                    null,
                    new DuoAttention(allStreaming, new FullAttention(), 4, 100),
                    Transformer.Logits.ALL,
                    (s, l) -> duo.add(l.clone()));
            t.forward(
                    t.newCache(),
                    tokens,
                    null,
                    new DuoAttention(allStreaming, new FullAttention(), 4, 8),
                    Transformer.Logits.ALL,
                    (s, l) -> tight.add(l.clone()));
            for (int i = 0; i < full.size(); i++) {
                assertThat(duo.get(i)).as("position %d", i).isEqualTo(full.get(i));
            }
            assertThat(tight.get(49)).isNotEqualTo(full.get(49));
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"full", "infllm"})
    void streamingRowsBehindTheWindowAreDroppedWithoutChangingAnyLogit(String innerPolicy) {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 8, 2, false));
            int layers = m.config().layers();
            int kvHeads = m.config().kvHeads();
            float[][] scores = new float[layers][kvHeads];
            scores[0][0] = 1; // layer 0 mixed, the last layer retrieval, the layers between streaming
            java.util.Arrays.fill(scores[layers - 1], 1);
            HeadPattern p = HeadPattern.byThreshold(scores, 0.5);
            int[] tokens = RetrievalMemoryTest.stream(120);
            List<float[]> kept = new ArrayList<>();
            List<float[]> dropped = new ArrayList<>();
            KvCache keep = t.newCache();
            KvCache drop = t.newCache();
            java.util.function.Supplier<MemoryPolicy> inner = () -> innerPolicy.equals("full")
                    ? new FullAttention()
                    : RetrievalMemory.of(
                            RetrievalSettings.infLlm().withWindow(4, 16).withTopUnits(2), m.config());
            DuoAttention keeping = new DuoAttention(p, inner.get(), 4, 24, false);
            DuoAttention dropping = new DuoAttention(p, inner.get(), 4, 24);
            t.forward(keep, tokens, null, keeping, Transformer.Logits.ALL, (s, l) -> kept.add(l.clone()));
            t.forward(drop, tokens, null, dropping, Transformer.Logits.ALL, (s, l) -> dropped.add(l.clone()));
            assertThat(drop.blocks())
                    .as("nothing dropped before the memory is committed")
                    .allSatisfy(blk -> assertThat(blk.maskedKvHeads()).isZero());
            keeping.committed(keep);
            dropping.committed(drop);
            // a transient question after the stream drops nothing (its tokens are taken back)
            drop.beginTransient();
            t.forward(
                    drop,
                    RetrievalMemoryTest.stream(40),
                    null,
                    dropping,
                    Transformer.Logits.ALL,
                    (s, l) -> dropped.add(l.clone()));
            keep.beginTransient();
            t.forward(
                    keep,
                    RetrievalMemoryTest.stream(40),
                    null,
                    keeping,
                    Transformer.Logits.ALL,
                    (s, l) -> kept.add(l.clone()));
            for (int i = 0; i < kept.size(); i++) {
                assertThat(dropped.get(i)).as("logits %d", i).isEqualTo(kept.get(i));
            }
            long streamingMask0 = 0b10;
            int kvDim = m.config().kvDim();
            int headDim = kvDim / kvHeads;
            for (io.engram.engine.kv.KvBlock blk : drop.blocks()) {
                // behind the window of the next step (120 - 24 = 96) and past the sinks: blocks at 16..95
                boolean behind = blk.firstSeq() >= 4 && blk.isFull() && blk.firstSeq() + blk.length() <= 96;
                assertThat(blk.droppedHeads(0)).as("%s layer 0", blk).isEqualTo(behind ? streamingMask0 : 0);
                assertThat(blk.droppedHeads(1)).as("%s layer 1", blk).isEqualTo(behind ? (1L << kvHeads) - 1 : 0);
                assertThat(blk.droppedHeads(layers - 1)).isZero();
                if (behind) {
                    float[] k = new float[blk.length() * kvDim];
                    drop.readKey(blk, 0, 0, new float[kvDim]); // brought back when the policy moved it out
                    b.read(blk.keys(0), 0, k, 0, k.length);
                    for (int tok = 0; tok < blk.length(); tok++) {
                        for (int d = 0; d < kvDim; d++) {
                            assertThat(k[tok * kvDim + d] == 0f)
                                    .as("%s token %d dim %d", blk, tok, d)
                                    .isEqualTo(d / headDim == 1);
                        }
                    }
                }
            }
            assertThat(drop.blocks().stream().filter(blk -> blk.droppedHeads(1) != 0))
                    .hasSize(5);
            // layers whose every head streams keep no rows behind the window: their buffers are released, and read
            // back as zeros where a policy asks (representative keys)
            for (io.engram.engine.kv.KvBlock blk : drop.blocks()) {
                boolean gone = blk.droppedHeads(1) != 0;
                for (int l = 1; l < layers - 1; l++) {
                    assertThat(blk.vacant(l)).as("%s layer %d", blk, l).isEqualTo(gone);
                    if (gone) {
                        assertThat(blk.isResident(l)).as("%s layer %d", blk, l).isFalse();
                        float[] key = new float[kvDim];
                        java.util.Arrays.fill(key, 1f);
                        drop.readKey(blk, l, 0, key);
                        assertThat(key).containsOnly(0f);
                        drop.ensureResident(blk, l);
                        assertThat(blk.isResident(l)).as("never brought back").isFalse();
                    }
                }
                assertThat(blk.vacant(0)).as("layer 0 keeps its retrieval head").isFalse();
            }
            if (innerPolicy.equals("full")) { // every block stays in engine memory, less the released layers
                long layerBytes = 2L * 16 * kvDim * Float.BYTES;
                assertThat(drop.residentBytes()).isEqualTo(keep.residentBytes() - 5 * (layers - 2) * layerBytes);
            }
            assertThat(keep.blocks())
                    .allSatisfy(blk -> assertThat(blk.maskedKvHeads()).isZero());
            // the memory read without DuoAttention (or under another pattern) is refused, never answered from zeros
            drop.truncate(120);
            assertThatThrownBy(() ->
                            t.forward(drop, new int[] {5}, null, inner.get(), Transformer.Logits.LAST, (s, l) -> {}))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("dropped")
                    .hasMessageContaining("RESET");
            if (innerPolicy.equals("infllm")) { // blocks moved out of engine memory are kept without the dropped rows
                assertThat(keep.unitStore().bytes()).isPositive();
                assertThat(drop.unitStore().bytes()).isLessThan(keep.unitStore().bytes() * 3 / 4);
            }
        }
    }

    @Test
    void calibrationBuildsPasskeyTasksAndScoresEveryHead() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
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
            HeadCalibration.Result r =
                    cal.run(new int[] {120, 200}, new double[] {0.2, 0.8}, 2, 6, true, 1, i -> progress[0] = i);
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
