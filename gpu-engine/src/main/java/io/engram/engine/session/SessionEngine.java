package io.engram.engine.session;

import io.engram.engine.attribution.AttentionTrace;
import io.engram.engine.attribution.Provenance;
import io.engram.engine.attribution.Segment;
import io.engram.engine.attribution.Segmenter;
import io.engram.engine.generate.Generation;
import io.engram.engine.generate.Generator;
import io.engram.engine.generate.SamplingOptions;
import io.engram.engine.generate.TokenListener;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.MemoryPolicy;
import io.engram.engine.memory.duo.DuoAttention;
import io.engram.engine.memory.duo.HeadPattern;
import io.engram.engine.model.Transformer;
import io.engram.engine.tokenizer.StreamingDecoder;
import io.engram.engine.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * What the stream operator needs from the engine: ingest a source event's text into a session's KV memory (chunked
 * prefill, every token tagged with its provenance), and answer a question over everything the session has ingested,
 * citing the segments of source events the answer attended to (the fast attribution tier, {@link AttentionTrace}). One instance serves all sessions of a task slot; the weights are
 * shared, each session has its own {@link KvCache}.
 *
 * <p>Not thread-safe: called by one thread (the task thread).
 */
public final class SessionEngine {
    private final Transformer model;
    private final Tokenizer tokenizer;
    private final MemoryPolicy policy;
    private final PromptFormat format;
    private final Segmenter segmenter;
    private final HeadPattern retrievalHeads;

    public SessionEngine(Transformer model, Tokenizer tokenizer, MemoryPolicy policy, PromptFormat format) {
        this(model, tokenizer, policy, format, Segmenter.DEFAULT_WORDS);
    }

    /**
     * @param segmentWords words per attribution segment (see {@link Segmenter}); the fast tier's attention mass counts
     *     only the retrieval heads when {@code policy} is DuoAttention, every head otherwise
     */
    public SessionEngine(
            Transformer model, Tokenizer tokenizer, MemoryPolicy policy, PromptFormat format, int segmentWords) {
        this(model, tokenizer, policy, format, segmentWords, policy instanceof DuoAttention duo ? duo.pattern() : null);
    }

    /**
     * @param retrievalHeads the heads whose attention the fast attribution tier counts (e.g. a calibrated pattern,
     *     {@code engram calibrate-heads}), or null for every head
     */
    public SessionEngine(
            Transformer model,
            Tokenizer tokenizer,
            MemoryPolicy policy,
            PromptFormat format,
            int segmentWords,
            HeadPattern retrievalHeads) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.policy = policy;
        this.format = format;
        this.segmenter = new Segmenter(tokenizer, segmentWords);
        this.retrievalHeads = retrievalHeads;
    }

    /** The heads the fast attribution tier counts, or null for all. */
    public HeadPattern retrievalHeads() {
        return retrievalHeads;
    }

    /** How the memory is cut into attribution segments. */
    public Segmenter segmenter() {
        return segmenter;
    }

    /** The prompt format sessions are ingested and questioned with. */
    public PromptFormat format() {
        return format;
    }

    /** The tokens that ask {@code question} after a memory of {@code memoryTokens} tokens, as {@link #answer} prompts. */
    public int[] questionTokens(String question, long memoryTokens) {
        return tokenizer.encode(format.question(question, memoryTokens == 0), memoryTokens == 0);
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
        return ingest(memory, text, eventIndex, Integer.MAX_VALUE);
    }

    /** An event over the token cap its caller set; nothing was ingested. */
    public static final class TooManyTokensException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        TooManyTokensException(int tokens, int cap) {
            super("the event is " + tokens + " tokens, over the cap of " + cap + " per event");
        }
    }

    /**
     * {@link #ingest(KvCache, String, int)} of an event of at most {@code maxTokens} tokens.
     *
     * @throws TooManyTokensException when it is longer (before any forward pass: the memory is unchanged)
     */
    public Ingested ingest(KvCache memory, String text, int eventIndex, int maxTokens) {
        return ingest(memory, text, eventIndex, 0, maxTokens);
    }

    /**
     * {@link #ingest(KvCache, String, int, int)} of a part of an event's text that starts at {@code charOffset} of it:
     * a part after the first ({@code charOffset > 0}) continues the event, with no separator before it, and its tokens'
     * provenance counts characters from the start of the event's text.
     */
    public Ingested ingest(KvCache memory, String text, int eventIndex, int charOffset, int maxTokens) {
        boolean first = memory.nextSeq() == 0;
        String formatted = charOffset > 0 && !first ? text : format.content(text, first);
        int[] ids = tokenizer.encode(formatted, first);
        if (ids.length > maxTokens) {
            throw new TooManyTokensException(ids.length, maxTokens);
        }
        if (ids.length == 0) {
            return new Ingested(0, Set.of());
        }
        long[] tags = charTags(ids, eventIndex, text, Math.max(0, formatted.indexOf(text)), charOffset);
        long firstSeq = memory.nextSeq();
        policy.beginTurn(memory, firstSeq, ids.length);
        try {
            model.forward(memory, ids, tags, policy, Transformer.Logits.NONE, (s, l) -> {});
        } finally {
            policy.endTurn(memory);
        }
        policy.committed(memory);
        Set<KvBlock> touched = new LinkedHashSet<>(memory.drainRewritten()); // earlier blocks changed in place
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
    private long[] charTags(int[] ids, int eventIndex, String text, int prefix, int charOffset) {
        long[] tags = new long[ids.length];
        StreamingDecoder dec = new StreamingDecoder(tokenizer, true);
        int offset = 0;
        for (int i = 0; i < ids.length; i++) {
            int end = offset + dec.accept(ids[i]).length();
            tags[i] = end <= prefix && end > offset
                    ? Provenance.NONE
                    : Provenance.pack(eventIndex, charOffset + Math.max(0, Math.min(offset - prefix, text.length())));
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
    public Reply answer(KvCache memory, String question, SamplingOptions options, TokenListener listener) {
        return answerBatch(List.of(new Query(memory, question, options, listener)))
                .get(0);
    }

    /**
     * Answers several questions, each over its own session's memory, in shared forward passes (see
     * {@link Generator#generateBatch}); each answer equals the one {@link #answer} gives alone. Memories must be
     * distinct; each is truncated back afterwards.
     */
    public List<Reply> answerBatch(List<Query> queries) {
        List<Generator.Request> requests = new ArrayList<>(queries.size());
        List<AttentionTrace> traces = new ArrayList<>(queries.size());
        long[] marks = new long[queries.size()];
        for (int i = 0; i < queries.size(); i++) {
            Query q = queries.get(i);
            marks[i] = q.memory().nextSeq();
            q.memory().beginTransient(); // the question and the answer do not stay in memory
            int[] prompt = questionTokens(q.question(), marks[i]);
            AttentionTrace trace = new AttentionTrace(retrievalHeads);
            traces.add(trace);
            MemoryPolicy observed = policy.observedBy(trace);
            StreamingDecoder dec = new StreamingDecoder(tokenizer, true);
            requests.add(
                    new Generator.Request(q.memory(), prompt, null, observed, q.options(), dec::accept, q.listener()));
        }
        try {
            List<Generation> gens = new Generator(model, Math.min(model.config().vocabSize(), tokenizer.vocabSize()))
                    .generateBatch(requests);
            List<Reply> out = new ArrayList<>(gens.size());
            for (int i = 0; i < gens.size(); i++) {
                KvCache mem = queries.get(i).memory();
                mem.truncate(marks[i]);
                List<Segment> segments = segmenter.segments(mem);
                double[] scores = traces.get(i).segmentScores(segments);
                out.add(new Reply(
                        gens.get(i).text(),
                        gens.get(i),
                        marks[i],
                        citations(segments, scores),
                        segments,
                        scores,
                        retrieved(traces.get(i).retrieved(marks[i]), segments)));
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

    /** The trace's spans with the events their tokens came from (segments are in memory order). */
    static List<RetrievedSpan> retrieved(List<AttentionTrace.Span> spans, List<Segment> segments) {
        List<RetrievedSpan> out = new ArrayList<>(spans.size());
        int first = 0;
        for (AttentionTrace.Span sp : spans) {
            while (first < segments.size() && segments.get(first).endSeq() <= sp.firstSeq()) {
                first++; // spans are in order too: segments ending before this one end before every later span
            }
            java.util.TreeSet<Integer> events = new java.util.TreeSet<>();
            for (int j = first; j < segments.size() && segments.get(j).firstSeq() < sp.endSeq(); j++) {
                events.add(segments.get(j).eventIndex());
            }
            out.add(new RetrievedSpan(sp.firstSeq(), sp.endSeq(), sp.layers(), List.copyOf(events)));
        }
        return out;
    }

    /** Segments with attention mass as citations, best first (ties: earlier segment first). */
    private static List<AttendedSegment> citations(List<Segment> segments, double[] scores) {
        List<AttendedSegment> out = new ArrayList<>();
        for (Segment seg : segments) {
            if (scores[seg.index()] > 0) {
                out.add(new AttendedSegment(
                        seg.eventIndex(), seg.charStart(), seg.charEnd(), scores[seg.index()], seg.index()));
            }
        }
        out.sort((a, b) -> a.score() != b.score()
                ? Double.compare(b.score(), a.score())
                : Integer.compare(a.segment(), b.segment()));
        return out;
    }

    /** Segments of the memory and their fast-tier scores for a given answer. */
    public record Traced(List<Segment> segments, double[] scores) {}

    /**
     * The fast tier for a given answer instead of a generated one: prefills the question, then feeds {@code answer}'s
     * tokens one step each (as decoding would) while the attention is traced. The memory is truncated back after.
     */
    public Traced trace(KvCache memory, String question, int[] answer) {
        long mark = memory.nextSeq();
        AttentionTrace trace = new AttentionTrace(retrievalHeads);
        MemoryPolicy observed = policy.observedBy(trace);
        memory.beginTransient();
        try {
            model.forward(
                    memory, questionTokens(question, mark), null, observed, Transformer.Logits.NONE, (s, l) -> {});
            for (int i = 0; i + 1 < answer.length; i++) {
                model.forward(memory, new int[] {answer[i]}, null, observed, Transformer.Logits.NONE, (s, l) -> {});
            }
        } finally {
            memory.truncate(mark);
        }
        List<Segment> segments = segmenter.segments(memory);
        return new Traced(segments, trace.segmentScores(segments));
    }

    /** The instruction a summary answers, over the text it summarizes. */
    public static final String SUMMARY_INSTRUCTION = "Summarize the text above in a few sentences.";

    /**
     * A summary of {@code texts} (e.g. episode summaries, in order) on a scratch memory of its own: the texts joined
     * by blank lines, then {@link #SUMMARY_INSTRUCTION}. When they do not fit in {@code contextTokens} together with the
     * summary, they are summarized in consecutive groups that fit first, and those summaries are summarized in turn
     * (a few rounds at most; what still does not fit then is left out from the oldest on, so the result covers the
     * most recent text).
     */
    public String summarize(List<String> texts, int contextTokens, SamplingOptions options) {
        if (texts.isEmpty()) {
            throw new IllegalArgumentException("nothing to summarize");
        }
        int budget = Math.max(16, contextTokens - options.maxNewTokens() - 32);
        List<String> level = new ArrayList<>(texts);
        for (int round = 0; round < 4 && tokens(String.join("\n\n", level)) > budget && level.size() > 1; round++) {
            List<String> next = new ArrayList<>();
            List<String> group = new ArrayList<>();
            for (String t : level) {
                if (!group.isEmpty() && tokens(String.join("\n\n", group) + "\n\n" + t) > budget) {
                    next.add(summaryOf(group, options));
                    group.clear();
                }
                group.add(t);
            }
            next.add(summaryOf(group, options));
            level = next;
        }
        while (level.size() > 1 && tokens(String.join("\n\n", level)) > budget) {
            level.remove(0);
        }
        return summaryOf(level, options);
    }

    /**
     * A summary of the memory's tokens {@code [from, to)} alone (an episode), not of the whole memory: their text,
     * decoded from the memory's blocks, summarized on a scratch memory as {@link #summarize} does, in pieces that fit
     * {@code contextTokens}. Costs a prefill of the span. Tokens retention has dropped are not in memory and not
     * summarized.
     *
     * @throws IllegalArgumentException when the memory holds no token of the span
     */
    public String summarizeSpan(KvCache memory, long from, long to, int contextTokens, SamplingOptions options) {
        int piece = Math.max(16, (contextTokens - options.maxNewTokens() - 32) * 7 / 8); // re-encoding may add a few
        List<String> pieces = new ArrayList<>();
        int[] ids = new int[piece];
        int n = 0;
        List<KvBlock> blocks = memory.blocks();
        for (int bi = memory.firstBlockEndingAfter(from); bi < blocks.size(); bi++) {
            KvBlock b = blocks.get(bi);
            for (int slot = 0; slot < b.length(); slot++) {
                long seq = b.firstSeq() + slot;
                if (seq >= from && seq < to) {
                    ids[n++] = b.token(slot);
                    if (n == piece) {
                        pieces.add(tokenizer.decode(ids, true));
                        n = 0;
                    }
                }
            }
            if (b.firstSeq() + b.length() >= to) {
                break;
            }
        }
        if (n > 0) {
            pieces.add(tokenizer.decode(java.util.Arrays.copyOf(ids, n), true));
        }
        if (pieces.isEmpty()) {
            throw new IllegalArgumentException("memory holds no token in [%d, %d)".formatted(from, to));
        }
        return summarize(pieces, contextTokens, options);
    }

    private int tokens(String text) {
        return tokenizer.encode(text, false).length;
    }

    private String summaryOf(List<String> texts, SamplingOptions options) {
        KvCache scratch = newMemory();
        ingest(scratch, String.join("\n\n", texts), 0);
        return answer(scratch, SUMMARY_INSTRUCTION, options, TokenListener.NONE)
                .text()
                .strip();
    }
}
