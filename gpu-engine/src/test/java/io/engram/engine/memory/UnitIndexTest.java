package io.engram.engine.memory;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.memory.retrieval.UnitIndex;
import io.engram.engine.memory.retrieval.UnitRanking;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class UnitIndexTest {

    static final int LAYERS = 2;
    static final int DIM = 16;

    /** Units drawn around {@code topics} directions, as attention keys of a long stream cluster by what it is about. */
    static List<float[][]> topical(int n, int topics, long seed) {
        Random r = new Random(seed);
        float[][][] centres = new float[LAYERS][topics][DIM];
        for (float[][] layer : centres) {
            for (float[] c : layer) {
                for (int j = 0; j < DIM; j++) {
                    c[j] = (float) (3 * r.nextGaussian());
                }
            }
        }
        List<float[][]> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int topic = (i / 20 + r.nextInt(3)) % topics; // runs of units on one topic
            float[][] repr = new float[LAYERS][DIM];
            for (int l = 0; l < LAYERS; l++) {
                for (int j = 0; j < DIM; j++) {
                    repr[l][j] = centres[l][topic][j] + (float) r.nextGaussian();
                }
            }
            out.add(repr);
        }
        return out;
    }

    static List<Integer> drawn(UnitRanking ranking, int k) {
        List<Integer> out = new ArrayList<>();
        while (out.size() < k && ranking.hasNext()) {
            out.add(ranking.next());
        }
        return out;
    }

    static float[] query(Random r) {
        float[] q = new float[DIM];
        for (int j = 0; j < DIM; j++) {
            q[j] = (float) r.nextGaussian();
        }
        return q;
    }

    @Test
    void belowTheClusteringThresholdEveryRankingIsTheExactScan() {
        UnitIndex index = new UnitIndex(LAYERS, DIM, 4);
        topical(UnitIndex.CLUSTER_FROM - 1, 8, 1).forEach(index::add);
        assertThat(index.clustered()).isFalse();
        Random r = new Random(2);
        for (int t = 0; t < 20; t++) {
            float[] q = query(r);
            assertThat(drawn(index.rank(1, q), index.size())).isEqualTo(drawn(index.exact(1, q), index.size()));
        }
    }

    @Test
    void overTopicalKeysTheIndexFindsTheExactTopUnitsScoringAFractionOfThem() {
        UnitIndex index = new UnitIndex(LAYERS, DIM, 16);
        topical(6000, 64, 3).forEach(index::add);
        assertThat(index.clustered()).isTrue();
        assertThat(index.listCount()).isEqualTo((int) Math.ceil(Math.sqrt(4096)));
        Random r = new Random(4);
        int hits = 0;
        int wanted = 0;
        long scored = 0;
        for (int t = 0; t < 200; t++) {
            float[] q = query(r);
            int layer = t % LAYERS;
            UnitRanking approx = index.rank(layer, q);
            Set<Integer> got = new HashSet<>(drawn(approx, 4));
            for (int u : drawn(index.exact(layer, q), 4)) {
                hits += got.contains(u) ? 1 : 0;
            }
            wanted += 4;
            scored += approx.scored();
        }
        assertThat((double) hits / wanted).as("recall@4").isGreaterThanOrEqualTo(0.95);
        assertThat((double) scored / 200 / index.size())
                .as("share of units scored")
                .isLessThan(0.4);
    }

    @Test
    void onRepeatedTextARankingStopsOpeningListsOnceItScoredWhatItsProbesWouldHoldAtTheMeanSize() {
        // 600 units of one repeated passage (identical representatives gather in one list) among 424 varied ones
        Random r = new Random(5);
        float[] repeated = query(r);
        for (int j = 0; j < DIM; j++) {
            repeated[j] *= 4;
        }
        UnitIndex index = new UnitIndex(LAYERS, DIM, 16);
        List<float[][]> varied = topical(424, 32, 6);
        for (int i = 0, v = 0; i < 1024; i++) {
            index.add(i % 5 < 3 && i - v < 600 ? new float[][] {repeated.clone(), repeated.clone()} : varied.get(v++));
        }
        assertThat(index.clustered()).isTrue();
        UnitRanking ranking = index.rank(0, repeated);
        List<Integer> first = drawn(ranking, 3);
        // the repeated passage's list is opened first and already holds more than 16 lists of the mean size (16 x
        // 1024 / 32 = 512): no other list is scored; ties draw the earliest units first, as the exact scan does
        assertThat(ranking.scored()).isEqualTo(600);
        assertThat(first).isEqualTo(drawn(index.exact(0, repeated), 3));
    }

    @Test
    void aRestoreFromTheStoredListsGivesTheSameRankingsWithoutClusteringAgain() {
        List<float[][]> units = topical(1500, 32, 5);
        UnitIndex live = new UnitIndex(LAYERS, DIM, 8);
        units.forEach(live::add);
        assertThat(live.takeReassigned()).isTrue(); // clustered at 512 and 1024 units
        assertThat(live.takeReassigned()).isFalse();
        List<int[]> stored = new ArrayList<>();
        for (int i = 0; i < units.size(); i++) {
            stored.add(live.lists(i));
        }
        UnitIndex restored = new UnitIndex(LAYERS, DIM, 8);
        restored.restore(units, stored);
        assertThat(restored.takeReassigned())
                .as("rebuilt from the stored lists, not clustered")
                .isFalse();
        // both keep growing the same way
        List<float[][]> more = topical(700, 32, 6);
        more.forEach(live::add);
        more.forEach(restored::add);
        Random r = new Random(7);
        for (int t = 0; t < 50; t++) {
            float[] q = query(r);
            assertThat(drawn(restored.rank(t % LAYERS, q), 10)).isEqualTo(drawn(live.rank(t % LAYERS, q), 10));
        }
        for (int i = 0; i < live.size(); i++) {
            assertThat(restored.lists(i)).isEqualTo(live.lists(i));
        }
    }

    @Test
    void aRestoreWithoutListsClustersAgainAndRanksEveryUnit() {
        List<float[][]> units = topical(900, 16, 8);
        UnitIndex index = new UnitIndex(LAYERS, DIM, 4);
        List<int[]> none = new ArrayList<>();
        units.forEach(u -> none.add(null));
        index.restore(units, none);
        assertThat(index.clustered()).isTrue();
        assertThat(index.takeReassigned()).isTrue();
        Set<Integer> all = new HashSet<>(drawn(index.rank(0, query(new Random(9))), Integer.MAX_VALUE));
        assertThat(all).hasSize(units.size());
    }
}
