package io.engram.engine.attribution;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The precise tier's candidates reach past what the memory policy retrieved: the fast tier's picks and the lexical ones. */
class CandidatesTest {

    /** 40 segments of 20 common tokens each (ids 10..59); segment 3 also holds the rare tokens 900, 901, 902. */
    static List<Segment> stream() {
        SplittableRandom r = new SplittableRandom(5);
        List<Segment> out = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            int[] t = new int[20];
            for (int j = 0; j < t.length; j++) {
                t[j] = 10 + r.nextInt(50);
            }
            if (i == 3) {
                t[7] = 900;
                t[8] = 901;
                t[9] = 902;
            }
            out.add(new Segment(i, i, 0, 0, 20L * i, t));
        }
        return out;
    }

    @Test
    void aFactFarBackThatTheAnswerCopiesIsACandidateThoughAttentionNeverSawIt() {
        List<Segment> segs = stream();
        double[] fast = new double[40];
        fast[37] = 0.5; // the policy retrieved only recent text
        fast[38] = 0.3;
        fast[39] = 0.2;
        int[] question = {11, 12, 13, 901};
        int[] answer = {900, 901, 902, 14};
        List<Segment> cands = Candidates.select(segs, fast, question, answer, 4, 1000);
        assertThat(cands).extracting(Segment::index).contains(3, 37, 38).isSorted();
        double[] lex = Candidates.lexicalScores(segs, question, answer);
        for (int i = 0; i < 40; i++) {
            if (i != 3) {
                assertThat(lex[3]).as("segment %d", i).isGreaterThan(lex[i] + 1);
            }
        }
    }

    @Test
    void budgetsBoundCountAndTokensAndWithoutSignalTheMostRecentAreTaken() {
        List<Segment> segs = stream();
        List<Segment> cands = Candidates.select(segs, new double[40], new int[] {7000}, new int[] {7001}, 5, 60);
        assertThat(cands).extracting(Segment::index).containsExactly(37, 38, 39); // 3 x 20 tokens fit 60
    }
}
