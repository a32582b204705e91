package io.engram.engine.memory;

import java.io.Serializable;

/**
 * How InfLLM and EM-LLM choose the units a step attends to, besides their sizes.
 *
 * @param projection rank units by the step's query through the model's {@link
 *     io.engram.engine.memory.retrieval.RankingProjection} (when the model folder holds one); false: the raw query, as
 *     the papers
 * @param lexicalUnits on a question's steps (and its answer's), also retrieve the units whose tokens best match the
 *     question's (BM25 over the session's units), each with the unit after it, on top of those the query ranks: a
 *     small model's query often misses the unit that holds the asked fact among thousands, while the fact's key words
 *     find it; 0 retrieves by the query alone (the papers' method)
 */
public record RankingSpec(boolean projection, int lexicalUnits) implements Serializable {

    /** Engram's default: the projection where the model has one, and two lexical matches per question. */
    public static final RankingSpec DEFAULT = new RankingSpec(true, 2);

    public RankingSpec {
        if (lexicalUnits < 0) {
            throw new IllegalArgumentException("lexical units must be >= 0, got " + lexicalUnits);
        }
    }

    /** The same with the projection on or off. */
    public RankingSpec withProjection(boolean on) {
        return new RankingSpec(on, lexicalUnits);
    }

    /** What {@code describe} adds to a policy's line. */
    String describe() {
        return lexicalUnits == 0 ? "" : ", %d lexical units per question".formatted(lexicalUnits);
    }
}
