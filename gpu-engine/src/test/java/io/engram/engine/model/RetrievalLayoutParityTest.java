package io.engram.engine.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.retrieval.RankingProjection;
import io.engram.engine.memory.retrieval.RetrievalMemory;
import io.engram.engine.memory.retrieval.RetrievalSettings;
import io.engram.engine.safetensors.SafetensorsWriter;
import io.engram.engine.session.PromptFormat;
import io.engram.engine.tensor.DType;
import io.engram.engine.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * training/'s retrieval layout (engram_train/memory_layout.py: what the model is trained to read beyond its window)
 * is the engine's InfLLM: the shipped engram-tiny reads ~2,000 tokens of this repository's docs with a passkey planted
 * in the middle, event by event, through the engine's {@link RetrievalMemory} (64 init + 704 local + top-2 units of 128,
 * 4 representative tokens) and through the Python layout; the logits of the question's last token agree. A layout that
 * retrieved other units, placed memory at other positions or chose other representatives would differ by whole logits.
 * The same again with a random {@link RankingProjection} (rank_adapter.py's file) that changes which units are
 * retrieved: both sides must apply it alike; and once more with the projection's shared selection (every layer
 * retrieves layer 0's units). Skipped where Python lacks PyTorch (TrainingPython).
 */
class RetrievalLayoutParityTest {

    private static final int BLOCK = 128;
    private static final int CHUNK = 512;

    @TempDir
    Path tmp;

    @Test
    void engineInfLlmAndTheTrainingLayoutGiveTheSameLogitsWithAndWithoutARankingProjection() throws Exception {
        List<List<Long>> raw = compare(null);
        List<List<Long>> projected = compare(projection(tmp.resolve("per-layer"), "-1"));
        assertThat(projected).as("a random projection retrieves other units").isNotEqualTo(raw);
        List<List<Long>> shared = compare(projection(tmp.resolve("shared"), "0"));
        assertThat(shared)
                .as("shared selection: every layer retrieves layer 0's units")
                .allSatisfy(units -> assertThat(units).isEqualTo(shared.getFirst()));
        assertThat(shared.getFirst()).isEqualTo(projected.getFirst());
        assertThat(shared).isNotEqualTo(projected);
    }

    /** A random ranking projection (seed 7) in {@code dir}, with metadata shared_selection_layer {@code shared}. */
    private static Path projection(Path dir, String shared) throws Exception {
        Files.createDirectories(dir);
        Path file = dir.resolve(RankingProjection.FILE);
        SafetensorsWriter w =
                new SafetensorsWriter().metadata("local_tokens", "704").metadata("shared_selection_layer", shared);
        Random r = new Random(7);
        for (int l = 0; l < 4; l++) {
            float[] m = new float[2 * 64 * 64];
            for (int i = 0; i < m.length; i++) {
                m[i] = (float) r.nextGaussian();
            }
            w.add("layers." + l + ".query", DType.F32, new long[] {2 * 64, 64}, m);
        }
        w.write(file);
        return file;
    }

    /** The question's logits through the engine and through memory_layout.py, ranking through {@code ranking}. */
    private List<List<Long>> compare(Path ranking) throws Exception {
        TrainingPython py = TrainingPython.require();
        Path modelDir = py.repo.resolve("models/engram-tiny");
        assumeTrue(Files.isRegularFile(modelDir.resolve("model.safetensors")), "models/engram-tiny not found");
        List<String> pieces = pieces(py.repo);

        ObjectMapper json = new ObjectMapper();
        ObjectNode spec = json.createObjectNode();
        ArrayNode ids = spec.putArray("ids");
        ArrayNode steps = spec.putArray("steps");
        if (ranking != null) {
            spec.put("ranking", ranking.toString());
        }
        float[] engine;
        int units;
        List<List<Long>> chosen = new ArrayList<>();
        try (Model m = Model.openHuggingFace(modelDir);
                CpuBackend b = new CpuBackend(2, false)) {
            Tokenizer tok = m.tokenizer();
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(BLOCK, CHUNK, 2, false));
            RetrievalMemory policy = RetrievalMemory.of(
                    new RetrievalSettings(64, 704, 4, 2, 0, 0, 32, new RetrievalSettings.Uniform()),
                    m.config(),
                    ranking == null ? null : RankingProjection.read(ranking, m.config()));
            KvCache cache = t.newCache();
            for (int i = 0; i < pieces.size(); i++) {
                int[] piece = tok.encode(PromptFormat.PLAIN.content(pieces.get(i), i == 0), i == 0);
                for (int from = 0; from < piece.length; from += CHUNK) { // the engine's prefill chunks: one step each
                    int[] step = Arrays.copyOfRange(piece, from, Math.min(piece.length, from + CHUNK));
                    long first = cache.nextSeq();
                    policy.beginTurn(cache, first, step.length);
                    t.forward(cache, step, null, policy, Transformer.Logits.NONE, (s, l) -> {});
                    policy.endTurn(cache);
                    policy.committed(cache);
                    add(ids, steps, step, first, false);
                }
            }
            units = policy.units(cache).size();
            int[] question = tok.encode(PromptFormat.PLAIN.question("What is the passkey?", false), false);
            long first = cache.nextSeq();
            cache.beginTransient();
            float[][] last = new float[1][];
            t.forward(cache, question, null, policy, Transformer.Logits.LAST, (s, l) -> last[0] = l.clone());
            add(ids, steps, question, first, true);
            engine = last[0];
            for (int l = 0; l < m.config().layers(); l++) {
                chosen.add(policy.selected(cache, l).stream()
                        .map(RetrievalMemory.Unit::start)
                        .toList());
            }
        }
        System.out.println("units retrieved for the question, per layer" + (ranking == null ? "" : " (projected)")
                + " (unit starts): " + chosen);
        assertThat(ids.size()).as("tokens read: well past the 768-token window").isGreaterThan(1800);
        assertThat(units).as("units packed, of which each layer retrieves 2").isGreaterThan(6);

        Path in = tmp.resolve("in.json");
        Path out = tmp.resolve("out.json");
        json.writeValue(in.toFile(), spec);
        assertThat(py.run(
                        List.of(
                                py.python,
                                "-m",
                                "engram_train.memory_layout",
                                modelDir.toString(),
                                in.toString(),
                                out.toString()),
                        300,
                        l -> false))
                .as("memory_layout")
                .isZero();
        JsonNode logits = json.readTree(out.toFile()).get("logits");
        assertThat(logits.size()).isEqualTo(engine.length);
        double worst = 0;
        int argEngine = 0;
        int argPython = 0;
        for (int i = 0; i < engine.length; i++) {
            worst = Math.max(worst, Math.abs(engine[i] - logits.get(i).asDouble()));
            argEngine = engine[i] > engine[argEngine] ? i : argEngine;
            argPython = logits.get(i).asDouble() > logits.get(argPython).asDouble() ? i : argPython;
        }
        System.out.printf(
                "engine vs training layout over %d tokens, %d units: max |dlogit| %.2e%n", ids.size(), units, worst);
        assertThat(argPython).as("greedy next token").isEqualTo(argEngine);
        assertThat(worst)
                .as("max |logit difference|, engine InfLLM vs memory_layout.py")
                .isLessThan(1e-3);
        return chosen;
    }

    private static void add(ArrayNode ids, ArrayNode steps, int[] tokens, long first, boolean transientStep) {
        for (int id : tokens) {
            ids.add(id);
        }
        steps.addArray().add(first).add(first + tokens.length).add(transientStep ? 1 : 0);
    }

    /** Paragraphs of this repository's docs, ~2,000 tokens, with the passkey planted halfway. */
    private static List<String> pieces(Path repo) throws Exception {
        List<String> out = new ArrayList<>();
        int words = 0;
        for (String doc : List.of("README.md", "training/README.md", "docs/bench/memory.md")) {
            for (String p : Files.readString(repo.resolve(doc)).split("\n\\s*\n")) {
                String s = p.strip();
                if (s.length() > 40 && words < 1300) {
                    out.add(s);
                    words += s.split("\\s+").length;
                }
            }
        }
        out.add(out.size() / 2, "The passkey is 58213. Remember it.");
        return out;
    }
}
