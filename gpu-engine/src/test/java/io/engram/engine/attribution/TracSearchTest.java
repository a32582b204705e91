package io.engram.engine.attribution;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The informed search on value functions whose answer is known, and its resumption from memoized values. */
class TracSearchTest {

    /** Additive support: each text adds its weight; texts 3 and 11 are two copies of one fact (either gives 5, both 5). */
    static double value(BitSet s) {
        double v = 0;
        double[] w = new double[16];
        w[6] = 4;
        w[13] = 2;
        for (int i = s.nextSetBit(0); i >= 0; i = s.nextSetBit(i + 1)) {
            v += w[i] + 0.01 * i; // small distinct weights for the rest: no ties
        }
        if (s.get(3) || s.get(11)) {
            v += 5;
        }
        return v;
    }

    static List<Integer> ids(List<TracSearch.Scored> top) {
        return top.stream().map(TracSearch.Scored::candidate).toList();
    }

    @Test
    void findsTheSupportingTextsIncludingRedundantCopiesThatLeaveOneOutMisses() {
        List<TracSearch.Scored> top =
                new TracSearch(new TracSearch.Settings(4, 10, 0.2, 2.0, 7)).run(16, TracSearchTest::value);
        assertThat(top).hasSize(4);
        assertThat(ids(top)).containsExactlyInAnyOrder(3, 11, 6, 13);
        assertThat(top.get(0).score()).isGreaterThanOrEqualTo(top.get(3).score());
        // leave-one-out alone: removing one copy changes nothing while the other is there, so both are never found
        TracSearch.Settings all = new TracSearch.Settings(4, 10, 0.2, 2.0, 7);
        List<TracSearch.Scored> loo =
                new TracSearch(all.withFunctions(TracSearch.ScoreFunction.LOO)).run(16, TracSearchTest::value);
        assertThat(ids(loo)).contains(6, 13);
        assertThat(ids(loo).stream().filter(i -> i == 3 || i == 11)).hasSizeLessThan(2);
    }

    @Test
    void eachScoreFunctionSearchesOnItsOwnAndTheEnsembleTakesEachTextsBest() {
        TracSearch.Settings all = new TracSearch.Settings(4, 10, 0.2, 2.0, 7);
        // single-text contribution finds both copies of the redundant fact by itself (each alone gives 5)
        List<TracSearch.Scored> stc =
                new TracSearch(all.withFunctions(TracSearch.ScoreFunction.STC)).run(16, TracSearchTest::value);
        assertThat(ids(stc)).contains(3, 11, 6);
        // the ensemble's score of a text is the best of its searches': text 6 scores 2 x 4 by leave-one-out
        List<TracSearch.Scored> ens = new TracSearch(all).run(16, TracSearchTest::value);
        double six = ens.stream()
                .filter(x -> x.candidate() == 6)
                .findFirst()
                .orElseThrow()
                .score();
        assertThat(six).isCloseTo(2 * (4 + 0.06), org.assertj.core.data.Offset.offset(1e-9));
    }

    @Test
    void fewerTextsThanTopKAreAllScoredAndRanked() {
        List<TracSearch.Scored> top = new TracSearch(TracSearch.Settings.defaults(1)).run(3, TracSearchTest::value);
        assertThat(ids(top)).hasSize(3).startsWith(2); // 2 (0.02) beats 0 and 1 by leave-one-out weight
        assertThat(new TracSearch(TracSearch.Settings.defaults(1)).run(0, s -> 0))
                .isEmpty();
    }

    @Test
    void aSearchStoppedByItsBudgetResumesFromItsValuesToTheSameResult() {
        TracSearch search = new TracSearch(new TracSearch.Settings(3, 4, 0.2, 2.0, 11));
        List<TracSearch.Scored> whole = search.run(16, TracSearchTest::value);
        Map<String, Double> kept = new HashMap<>();
        int attempts = 0;
        List<TracSearch.Scored> resumed = null;
        while (resumed == null) {
            attempts++;
            int[] budget = {2};
            Memo memo = new Memo(TracSearchTest::value, kept, () -> budget[0]-- > 0);
            resumed = memo.tryRun(search, 16);
            kept.putAll(memo.added());
            assertThat(memo.added().size()).isLessThanOrEqualTo(2);
        }
        assertThat(attempts).isGreaterThan(5);
        assertThat(resumed).isEqualTo(whole);
    }

    @Test
    void memoKeysNameTheSubset() {
        BitSet a = new BitSet();
        a.set(0);
        a.set(9);
        BitSet b = (BitSet) a.clone();
        assertThat(Memo.key(a)).isEqualTo(Memo.key(b)).isNotEqualTo(Memo.key(new BitSet()));
        b.set(10);
        assertThat(Memo.key(b)).isNotEqualTo(Memo.key(a));
    }
}
