package io.engram.engine.bench;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.AttentionPlan;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.ForwardingMemoryPolicy;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.memory.MemorySpec;
import io.engram.engine.memory.retrieval.RetrievalMemory;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Where a retrieval policy's decode time goes as a session grows: prefills this repository's docs (repeated) into one
 * cache through InfLLM or EM-LLM and, at each size named, decodes transient tokens, splitting each token's time into
 * the policy's planning (plan + per-layer retrieval) and the rest of the forward pass, with the first 16 tokens' rate
 * apart (what follows the prefill: retrieved blocks not cached yet) and the unit index's statistics. Sizes are measured
 * in the order given, so name a small size twice to measure it with the JIT warm. A tool, not a test: run it under
 * JFR to see inside either part.
 *
 * <pre>
 * mvn -q -pl gpu-engine exec:exec -Dexec.executable=$JAVA_HOME/bin/java -Dexec.classpathScope=test \
 *   -Dexec.args="--add-modules jdk.incubator.vector -cp %classpath io.engram.engine.bench.RetrievalDecodeProfile \
 *   ../models/engram-tiny emllm 32768,40000,1048576 400"
 * </pre>
 */
public final class RetrievalDecodeProfile {

    private RetrievalDecodeProfile() {}

    /** Times what the policy does per step. */
    static final class Timed extends ForwardingMemoryPolicy {
        long nanos;

        Timed(MemoryPolicy inner) {
            super(inner);
        }

        @Override
        public AttentionPlan plan(KvCache cache, long firstSeq, int n, int kvHeads) {
            long t = System.nanoTime();
            try {
                return inner.plan(cache, firstSeq, n, kvHeads);
            } finally {
                nanos += System.nanoTime() - t;
            }
        }

        @Override
        public AttentionPlan planLayer(KvCache cache, int layer, AttentionPlan stepPlan, float[] queryMean) {
            long t = System.nanoTime();
            try {
                return inner.planLayer(cache, layer, stepPlan, queryMean);
            } finally {
                nanos += System.nanoTime() - t;
            }
        }
    }

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        MemorySpec spec = MemorySpec.defaults(MemorySpec.Kind.valueOf(args[1].toUpperCase()));
        List<Long> sizes = new ArrayList<>();
        for (String s : args[2].split(",")) {
            sizes.add(Long.parseLong(s));
        }
        int decode = Integer.parseInt(args[3]);
        Path repo = dir.toAbsolutePath().getParent().getParent();
        StringBuilder text = new StringBuilder();
        for (String doc : List.of("README.md", "training/README.md", "docs/bench/memory.md", "docs/bench/engine.md")) {
            text.append(Files.readString(repo.resolve(doc))).append("\n\n");
        }
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(128, 512, 2, false));
            MemoryPolicy inner = spec.create(m.config(), dir);
            Timed policy = new Timed(inner);
            int[] ids = m.tokenizer().encode(text.toString(), false);
            KvCache cache = t.newCache();
            System.out.printf("%s over %d-token pieces of the docs%n", spec.describe(m.config()), ids.length);
            System.out.println(
                    "tokens | prefill s | decode ms/token | policy ms/token | rest ms/token | first 16 ms/token | index");
            long t0 = System.nanoTime();
            for (long size : sizes) {
                while (cache.nextSeq() < size) {
                    int n = (int) Math.min(ids.length, size - cache.nextSeq());
                    int[] piece = java.util.Arrays.copyOf(ids, n);
                    long first = cache.nextSeq();
                    policy.beginTurn(cache, first, n);
                    t.forward(cache, piece, null, policy, Transformer.Logits.NONE, (s, l) -> {});
                    policy.endTurn(cache);
                    policy.committed(cache);
                }
                double prefill = (System.nanoTime() - t0) / 1e9;
                long mark = cache.nextSeq();
                cache.beginTransient();
                policy.nanos = 0;
                long d0 = System.nanoTime();
                long first16 = 0;
                for (int i = 0; i < decode; i++) {
                    if (i == Math.min(16, decode - 1)) {
                        first16 = System.nanoTime() - d0;
                    }
                    t.forward(
                            cache,
                            new int[] {ids[i % ids.length]},
                            null,
                            policy,
                            Transformer.Logits.LAST,
                            (s, l) -> {});
                }
                double total = (System.nanoTime() - d0) / 1e6 / decode;
                double pol = policy.nanos / 1e6 / decode;
                cache.truncate(mark);
                System.out.printf(
                        "%d | %.1f | %.2f | %.2f | %.2f | %.2f | %s%n",
                        mark,
                        prefill,
                        total,
                        pol,
                        total - pol,
                        first16 / 1e6 / Math.min(16, decode - 1),
                        inner instanceof RetrievalMemory r ? r.indexStats() : "-");
            }
        }
    }
}
