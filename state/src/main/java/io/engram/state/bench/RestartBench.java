package io.engram.state.bench;

import io.engram.engine.backend.Backend;
import io.engram.engine.generate.SamplingOptions;
import io.engram.engine.generate.TokenListener;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.PolicySnapshot;
import io.engram.engine.session.SessionEngine;
import io.engram.schemas.MemoryUnit;
import io.engram.schemas.PolicyState;
import io.engram.schemas.SessionIndex;
import io.engram.state.cache.WorkingSet;
import io.engram.state.codec.KvDType;
import io.engram.state.rocksdb.RocksDbMemoryStore;
import io.engram.state.session.PolicyStateCodec;
import io.engram.state.session.SessionMemoryRepository;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Restart speed: a follow-up question on a long session, answered right after a restart from the session's stored
 * memory, against answering it after prefilling the session's text again (what a server without durable KV does).
 *
 * <p>The session is built as the stream job builds it: each event prefilled by the engine, its touched blocks encoded
 * and written to a RocksDB store through {@link SessionMemoryRepository}, the index saved, and the policy state turned
 * into its Avro records ({@link PolicyStateCodec}, serialized to bytes). The restart then opens the store afresh (an
 * empty working set: every block is read and decoded), loads the session, restores the policy state from the bytes and
 * answers. The re-prefill path ingests the same events into an empty memory and answers. Both run on the same engine
 * (a restarted job loads its model either way); the answers of the restored, the never-stopped and the re-prefilled
 * memory are compared.
 */
public final class RestartBench {
    private RestartBench() {}

    /** Events at each end of the session whose ingest time is reported. */
    public static final int EDGE = 5;

    /**
     * One session size.
     *
     * @param tokens tokens in the session
     * @param storedMiB bytes of the encoded blocks in the store
     * @param restoreMs load (read, check, decode every block) and policy-state restore
     * @param restoredAnswerMs answering on the restored memory
     * @param prefillMs prefilling the session's events again
     * @param prefilledAnswerMs answering on the re-prefilled memory
     * @param sameAsHot the restored memory's answer equals the never-stopped memory's
     * @param sameAsPrefilled the re-prefilled memory's answer equals the never-stopped memory's (differs when stored
     *     values are rounded, e.g. BF16 blocks)
     * @param firstEventsMs mean time to ingest and store one of the session's first {@link #EDGE} events (prefill,
     *     encode, write, index)
     * @param lastEventsMs the same for its last {@link #EDGE} events: per-event work that grows with the session shows
     *     as the difference
     */
    public record Row(
            long tokens,
            int events,
            double storedMiB,
            double restoreMs,
            double restoredAnswerMs,
            double prefillMs,
            double prefilledAnswerMs,
            boolean sameAsHot,
            boolean sameAsPrefilled,
            String answer,
            double firstEventsMs,
            double lastEventsMs) {
        /** How many times faster the restored follow-up is than the re-prefilled one. */
        public double speedup() {
            return (prefillMs + prefilledAnswerMs) / (restoreMs + restoredAnswerMs);
        }
    }

    /**
     * @param events the session's content events, in order
     * @param question the follow-up question
     * @param dir an empty folder for the RocksDB store
     */
    public static Row run(
            SessionEngine engine,
            Backend backend,
            KvDType storage,
            String model,
            int blockSize,
            List<String> events,
            String question,
            int maxNewTokens,
            Path dir,
            Consumer<String> progress) {
        String session = "restart-bench";
        SamplingOptions greedy = SamplingOptions.greedy(maxNewTokens);
        byte[][] policy;
        String hot;
        long tokens;
        long storedBytes = 0;
        double firstMs;
        double lastMs;
        try (RocksDbMemoryStore store = RocksDbMemoryStore.open(dir)) {
            SessionMemoryRepository repo = new SessionMemoryRepository(
                    store, new WorkingSet(64L << 20), backend, engine::newMemory, storage, model, blockSize);
            KvCache mem = repo.create(session);
            Map<Long, Integer> blockBytes = new java.util.HashMap<>();
            SessionIndex idx = null;
            long[] eventNanos = new long[events.size()];
            for (int i = 0; i < events.size(); i++) {
                long e0 = System.nanoTime();
                SessionEngine.Ingested in = engine.ingest(mem, events.get(i), i);
                Map<Long, Integer> crcs = SessionMemoryRepository.checksums(idx);
                for (SessionMemoryRepository.Encoded e : repo.encode(mem, in.touchedBlocks())) {
                    crcs.put(e.block().id(), e.crc());
                    repo.write(session, mem, e);
                    blockBytes.put(e.block().id(), e.bytes().length); // the last write of a block is what stays
                }
                idx = SessionMemoryRepository.indexOf(idx, session, mem, crcs, model, blockSize)
                        .setEventCount(i + 1)
                        .build();
                repo.saveIndex(session, idx);
                eventNanos[i] = System.nanoTime() - e0;
                if (i % 20 == 19) {
                    progress.accept("built %d of %d events (%d tokens)".formatted(i + 1, events.size(), mem.nextSeq()));
                }
            }
            for (KvBlock b : mem.blocks()) {
                storedBytes += blockBytes.getOrDefault(b.id(), 0);
            }
            firstMs = mean(eventNanos, 0, Math.min(EDGE, eventNanos.length));
            lastMs = mean(eventNanos, Math.max(0, eventNanos.length - EDGE), eventNanos.length);
            policy = encodePolicy(engine.policy().snapshot(mem, 0), mem.nextSeq());
            tokens = mem.nextSeq();
            hot = engine.answer(mem, question, greedy, TokenListener.NONE).text();
        }
        progress.accept("restarting");
        long t0 = System.nanoTime();
        String restored;
        long t1;
        try (RocksDbMemoryStore store = RocksDbMemoryStore.open(dir)) {
            SessionMemoryRepository repo = new SessionMemoryRepository(
                    store,
                    new WorkingSet(64L << 20),
                    backend,
                    engine::newMemory,
                    storage,
                    model,
                    blockSize,
                    engine.policy().offloadsMemory());
            SessionMemoryRepository.Loaded loaded = repo.load(session, repo.index(session));
            if (!loaded.damaged().isEmpty()) {
                throw new IllegalStateException("the bench's own store has damaged blocks: " + loaded.damaged());
            }
            if (policy != null) {
                engine.policy().restore(loaded.memory(), decodePolicy(policy));
            }
            t1 = System.nanoTime();
            restored = engine.answer(loaded.memory(), question, greedy, TokenListener.NONE)
                    .text();
        }
        long t2 = System.nanoTime();
        progress.accept("prefilling again");
        KvCache again = engine.newMemory();
        for (int i = 0; i < events.size(); i++) {
            engine.ingest(again, events.get(i), i);
        }
        long t3 = System.nanoTime();
        String prefilled =
                engine.answer(again, question, greedy, TokenListener.NONE).text();
        long t4 = System.nanoTime();
        return new Row(
                tokens,
                events.size(),
                storedBytes / 1048576.0,
                (t1 - t0) / 1e6,
                (t2 - t1) / 1e6,
                (t3 - t2) / 1e6,
                (t4 - t3) / 1e6,
                restored.equals(hot),
                prefilled.equals(hot),
                restored,
                firstMs,
                lastMs);
    }

    private static double mean(long[] nanos, int from, int to) {
        long sum = 0;
        for (int i = from; i < to; i++) {
            sum += nanos[i];
        }
        return to > from ? sum / 1e6 / (to - from) : 0;
    }

    /** The policy state and its units as Avro bytes (state first), or null for a policy that keeps none. */
    static byte[][] encodePolicy(PolicySnapshot snap, long nextSeq) {
        if (snap == null) {
            return null;
        }
        try {
            byte[][] out = new byte[1 + snap.units().size()][];
            out[0] = bytes(PolicyStateCodec.state(snap, nextSeq).toByteBuffer());
            for (int i = 0; i < snap.units().size(); i++) {
                out[i + 1] = bytes(PolicyStateCodec.unit(snap.units().get(i)).toByteBuffer());
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static PolicySnapshot decodePolicy(byte[][] stored) {
        try {
            PolicyState ps = PolicyState.fromByteBuffer(ByteBuffer.wrap(stored[0]));
            List<MemoryUnit> units = new ArrayList<>(stored.length - 1);
            for (int i = 1; i < stored.length; i++) {
                units.add(MemoryUnit.fromByteBuffer(ByteBuffer.wrap(stored[i])));
            }
            return PolicyStateCodec.snapshot(ps, units);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /**
     * Content events of about {@code wordsPerEvent} words of filler each, {@code targetTokens} tokens in all (by the
     * engine's tokenizer, roughly), with {@code fact} planted in the event at {@code depth} (0..1).
     */
    public static List<String> events(
            SessionEngine engine, int targetTokens, int wordsPerEvent, String fact, double depth) {
        String filler = io.engram.engine.bench.LongInputTasks.NOISE;
        int perRepeat = engine.tokenizer().encode(filler, false).length;
        int wordsPerRepeat = filler.split(" ").length;
        int repeats = Math.max(1, wordsPerEvent / wordsPerRepeat);
        String event = filler.repeat(repeats).strip();
        int count = Math.max(1, targetTokens / Math.max(1, perRepeat * repeats));
        List<String> out = new ArrayList<>(count);
        int at = (int) Math.min(count - 1, Math.round(depth * (count - 1)));
        for (int i = 0; i < count; i++) {
            out.add(i == at ? event + " " + fact : event);
        }
        return out;
    }
}
