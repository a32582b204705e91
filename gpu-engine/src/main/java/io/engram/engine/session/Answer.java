package io.engram.engine.session;

import io.engram.engine.generate.Generation;
import java.util.List;

/**
 * The engine's answer to one query over a session's memory.
 *
 * @param memoryTokens tokens of memory the answer could attend to
 * @param citations source events ranked by attention mass, best first
 */
public record Answer(String text, Generation generation, long memoryTokens, List<Citation> citations) {}
