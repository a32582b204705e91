package io.engram.engine.session;

import io.engram.engine.generate.Generation;
import io.engram.engine.generate.Generator;
import io.engram.engine.generate.SamplingOptions;
import io.engram.engine.generate.TokenListener;
import io.engram.engine.kv.AttentionObserver;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.model.Transformer;
import io.engram.engine.tokenizer.StreamingDecoder;
import io.engram.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the stream operator needs from the engine: ingest a source event's text into a session's KV memory (chunked
 * prefill, every token tagged with its provenance), and answer a question over everything the session has ingested,
 * citing the source events the answer attended to. One instance serves all sessions of a task slot; the weights are
 * shared, each session has its own {@link KvCache}.
 *
 * <p>Not thread-safe: called by one thread (the task thread).
 */
public final class SessionEngine {
    /** Tokens around the most attended token that a citation's char span covers, on each side. */
    static final int CITATION_WINDOW = 24;
    /** StreamingLLM's attention-sink count (algorithms.md section 1.3). */
    static final int SINK_TOKENS = 4;

    private final Transformer model;
    private final Tokenizer tokenizer;
    private final MemoryPolicy policy;
    private final PromptFormat format;

    public SessionEngine(Transformer model, Tokenizer tokenizer, MemoryPolicy policy, PromptFormat format) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.policy = policy;
        this.format = format;
    }

    public Transformer model() {
        return model;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** The memory policy every session of this engine attends with. */
    public MemoryPolicy policy() {
        return policy;
    }

    public KvCache newMemory() {
        return model.newCache();
    }

    /** What an ingest changed: the tokens added and the blocks written (to persist). */
    public record Ingested(int tokens, Set<KvBlock> touchedBlocks) {}

    /**
     * Appends {@code text} (one source event) to the memory. The first event of a session starts with BOS when the
     * tokenizer adds one.
     */
    public Ingested ingest(KvCache memory, String text, int eventIndex) {
        String formatted = format.content(text, memory.nextSeq() == 0);
        int[] ids = tokenizer.encode(formatted, memory.nextSeq() == 0);
        if (ids.length == 0) {
            return new Ingested(0, Set.of());
        }
        long[] tags = charTags(ids, eventIndex, text, Math.max(0, formatted.indexOf(text)));
        long firstSeq = memory.nextSeq();
        model.forward(memory, ids, tags, policy, Transformer.Logits.NONE, (s, l) -> {});
        Set<KvBlock> touched = new LinkedHashSet<>();
        for (KvBlock b : memory.blocks()) {
            if (b.firstSeq() + b.length() > firstSeq) {
                touched.add(b);
            }
        }
        return new Ingested(ids.length, touched);
    }

    /**
     * Per-token provenance: the char offset of each token's text in the event, found by incremental decoding. Tokens
     * made only of the format's separator before the text carry no provenance: they are not the source's words.
     */
    private long[] charTags(int[] ids, int eventIndex, String text, int prefix) {
        long[] tags = new long[ids.length];
        StreamingDecoder dec = new StreamingDecoder(tokenizer, true);
        int offset = 0;
        for (int i = 0; i < ids.length; i++) {
            int end = offset + dec.accept(ids[i]).length();
            tags[i] = end <= prefix && end > offset ? Provenance.NONE
                    : Provenance.pack(eventIndex, Math.max(0, Math.min(offset - prefix, text.length())));
            offset = end;
        }
        return tags;
    }

    /** One question over one session's memory. */
    public record Query(KvCache memory, String question, SamplingOptions options, TokenListener listener) {}

    /**
     * Answers {@code question} over the memory. The question and the answer are not kept: the memory is truncated
     * back to where it was.
     */
    public Answer answer(KvCache memory, String question, SamplingOptions options, TokenListener listener) {
        return answerBatch(List.of(new Query(memory, question, options, listener))).get(0);
    }

    /**
     * Answers several questions, each over its own session's memory, in shared forward passes (see
     * {@link Generator#generateBatch}); each answer equals the one {@link #answer} gives alone. Memories must be
     * distinct; each is truncated back afterwards.
     */
    public List<Answer> answerBatch(List<Query> queries) {
        List<Generator.Request> requests = new ArrayList<>(queries.size());
        List<Map<Long, Double>> masses = new ArrayList<>(queries.size());
        long[] marks = new long[queries.size()];
        for (int i = 0; i < queries.size(); i++) {
            Query q = queries.get(i);
            marks[i] = q.memory().nextSeq();
            q.memory().beginTransient(); // the question and the answer do not stay in memory
            int[] prompt = tokenizer.encode(format.question(q.question(), marks[i] == 0), marks[i] == 0);
            Map<Long, Double> massByTag = new HashMap<>();
            masses.add(massByTag);
            AttentionObserver observer = (layer, kvHead, span, mass, off) -> {
                for (int j = 0; j < span.length(); j++) {
                    int slot = span.from() + j;
                    long tag = span.block().source(slot);
                    // the first tokens of a stream collect attention whatever they say (attention sinks): not evidence
                    if (tag != Provenance.NONE && mass[off + j] > 0 && span.block().seq(slot) >= SINK_TOKENS) {
                        massByTag.merge(tag, (double) mass[off + j], Double::sum);
                    }
                }
            };
            MemoryPolicy observed = policy.observedBy(observer);
            StreamingDecoder dec = new StreamingDecoder(tokenizer, true);
            requests.add(new Generator.Request(q.memory(), prompt, null, observed, q.options(), dec::accept, q.listener()));
        }
        try {
            List<Generation> gens = new Generator(model, Math.min(model.config().vocabSize(), tokenizer.vocabSize()))
                    .generateBatch(requests);
            List<Answer> out = new ArrayList<>(gens.size());
            for (int i = 0; i < gens.size(); i++) {
                KvCache mem = queries.get(i).memory();
                mem.truncate(marks[i]);
                out.add(new Answer(gens.get(i).text(), gens.get(i), marks[i], citations(masses.get(i), mem)));
            }
            return out;
        } finally {
            for (int i = 0; i < queries.size(); i++) {
                KvCache mem = queries.get(i).memory();
                if (mem.nextSeq() != marks[i] || mem.isTransient()) {
                    mem.truncate(marks[i]); // also ends the transient section when nothing was appended
                }
            }
        }
    }

    private List<Citation> citations(Map<Long, Double> massByTag, KvCache memory) {
        Map<Integer, Double> byEvent = new HashMap<>();
        Map<Integer, Long> peak = new HashMap<>();
        double total = 0;
        for (var e : massByTag.entrySet()) {
            int ev = Provenance.eventIndex(e.getKey());
            byEvent.merge(ev, e.getValue(), Double::sum);
            total += e.getValue();
            Long best = peak.get(ev);
            if (best == null || massByTag.get(best) < e.getValue()) {
                peak.put(ev, e.getKey());
            }
        }
        List<Citation> out = new ArrayList<>();
        for (var e : byEvent.entrySet()) {
            long p = peak.get(e.getKey());
            int center = Provenance.charOffset(p);
            int start = Integer.MAX_VALUE;
            int end = 0;
            for (KvBlock b : memory.blocks()) {
                for (int s = 0; s < b.length(); s++) {
                    long tag = b.source(s);
                    if (tag == Provenance.NONE || Provenance.eventIndex(tag) != e.getKey()) {
                        continue;
                    }
                    int c = Provenance.charOffset(tag);
                    if (Math.abs(c - center) <= CITATION_WINDOW * 4) {
                        start = Math.min(start, c);
                        end = Math.max(end, c);
                    }
                }
            }
            out.add(new Citation(e.getKey(), start == Integer.MAX_VALUE ? center : start, Math.max(end, center) + 1, e.getValue() / total));
        }
        out.sort((a, b) -> Double.compare(b.score(), a.score()));
        return out;
    }
}
