package io.engram.engine.memory.retrieval;

import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvSpan;
import io.engram.engine.memory.retrieval.RetrievalMemory.Unit;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/** What {@link RetrievalMemory} keeps per session (in the session's {@link io.engram.engine.kv.KvCache}). */
final class RetrievalState implements io.engram.engine.kv.PolicyState {
    final List<Unit> units = new ArrayList<>();
    final UnitIndex index;
    long unitTokens; // tokens in units
    long rankingsSeen; // per session, for the recall sampling
    long packedEnd; // tokens [initTokens, packedEnd) are packed into units
    final TreeSet<Long> boundaries = new TreeSet<>(); // EM-LLM: sequence indices that start a new event
    final Map<KvBlock, float[]> mass =
            new IdentityHashMap<>(); // (layer, kvHead, slot) attention mass of unpacked tokens
    final List<LinkedHashMap<KvBlock, Boolean>> lru = new ArrayList<>(); // per layer, access order
    final List<List<Unit>> contiguity = new ArrayList<>(); // per layer: EM-LLM contiguity buffer
    final List<List<Unit>> selected = new ArrayList<>(); // per layer: units of the last step
    long window;
    boolean exact;
    boolean unitsRemoved; // since the last snapshot: the next one is complete, not incremental
    long checkedStructure = -1; // the cache's structure version the units were last checked against for gaps
    List<KvSpan> base = List.of();
    List<Integer> lexical = List.of(); // units the question's tokens match, during a transient section
    long lexicalTokens = -1; // transient tokens the lexical match was computed over

    RetrievalState(int layers, int kvDim, int initTokens, int probes) {
        index = new UnitIndex(layers, kvDim, probes);
        packedEnd = initTokens;
        for (int l = 0; l < layers; l++) {
            lru.add(new LinkedHashMap<>(16, 0.75f, true));
            contiguity.add(new ArrayList<>());
            selected.add(List.of());
        }
    }
}
