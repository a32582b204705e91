package io.engram.engine.tokenizer;

/**
 * An entry of {@code tokenizer.json}'s {@code added_tokens}: a token matched in the text before the model runs.
 *
 * @param lstrip also swallow whitespace on the left of a match
 * @param rstrip also swallow whitespace on the right of a match
 * @param singleWord only match when not inside a word
 * @param normalized match against the normalized text rather than the raw text
 * @param special skipped by {@code decode(ids, true)}
 */
public record AddedToken(
        int id,
        String content,
        boolean lstrip,
        boolean rstrip,
        boolean singleWord,
        boolean normalized,
        boolean special) {}
