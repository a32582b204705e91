package io.engram.engine.backend.cuda;

import io.engram.engine.backend.cuda.GpuMemoryBudget.Use;
import java.lang.ref.Cleaner;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Device memory of one CUDA backend: a caching allocator over {@link DevicePort} charged to the process-wide
 * {@link GpuMemoryBudget}, and the residency of KV buffers.
 *
 * <p>Allocation: sizes round up to buckets (at most 25% over); freed buffers go to a free list per (use, bucket) and
 * are reused by the next request of that bucket, so a forward step allocates no device memory in the steady state.
 * Free-listed bytes stay charged to the budget; when a reservation does not fit, the free lists are returned to the
 * device first.
 *
 * <p>KV residency: KV buffers (the K and V rows of one layer of one {@link io.engram.engine.kv.KvBlock}) are kept in
 * least-recently-used order. When the budget cannot cover an allocation, the least recently used KV buffer that the
 * current op has not pinned is evicted: copied to a page-locked host mirror and its device memory reused. Using an
 * evicted buffer ({@link #ensureResident}) uploads it again, asynchronously on the stream, evicting others as needed.
 * The host KvBlocks stay the plan's view of memory; this is the device-side mirror of them.
 *
 * <p>Lifetime: buffers are freed explicitly ({@link #free}) or, for KV buffers whose blocks a cache dropped, when they
 * become unreachable (a {@link Cleaner} queues them; the queue is drained on the backend's thread at the next
 * allocation, since the driver must not be called from the cleaner's thread).
 *
 * <p>Not thread-safe, except that the cleaner may queue releases at any time: one backend, one thread.
 */
final class DeviceMemory implements AutoCloseable {
    private static final Cleaner CLEANER = Cleaner.create();
    private static final long MIN_BUCKET = 256;

    /** One device allocation and, while evicted, its host mirror. */
    static final class Slot {
        final Use use;
        final long bytes; // bucket size
        long address; // 0 while evicted
        long mirror; // 0 when none
        boolean mirrorCurrent; // the mirror holds what the device holds
        int pins;
        boolean released;

        Slot(Use use, long bytes) {
            this.use = use;
            this.bytes = bytes;
        }
    }

    private final DevicePort port;
    private final GpuMemoryBudget budget;
    private final Map<Use, TreeMap<Long, ArrayDeque<Long>>> free = new EnumMap<>(Use.class);
    private final LinkedHashSet<Slot> lru = new LinkedHashSet<>(); // resident KV slots, eldest first
    private final List<Slot> pinned = new ArrayList<>();
    private final java.util.Set<Slot> live = new java.util.HashSet<>();
    private final ConcurrentLinkedQueue<Slot> dropped = new ConcurrentLinkedQueue<>();
    private long evictions;
    private long uploads;
    private long residentKv;
    private long mirroredKv;
    private boolean closed;

    DeviceMemory(DevicePort port, GpuMemoryBudget budget) {
        this.port = port;
        this.budget = budget;
        for (Use u : Use.values()) {
            free.put(u, new TreeMap<>());
        }
    }

    static long bucket(long bytes) {
        if (bytes <= MIN_BUCKET) {
            return MIN_BUCKET;
        }
        long step = Long.highestOneBit(bytes) >> 2;
        return (bytes + step - 1) / step * step;
    }

    /**
     * Allocates a slot of at least {@code bytes}.
     *
     * @param owner when not null, the slot is released when {@code owner} becomes unreachable
     * @param what for messages
     * @throws GpuMemoryException when it does not fit even after freeing cached buffers and evicting KV buffers
     */
    Slot allocate(Use use, long bytes, Object owner, String what) {
        checkOpen();
        drainDropped();
        Slot s = new Slot(use, bucket(bytes));
        s.address = obtain(use, s.bytes, what);
        live.add(s);
        if (use == Use.KV) {
            lru.add(s);
            residentKv += s.bytes;
        }
        if (owner != null) {
            CLEANER.register(owner, () -> dropped.add(s));
        }
        return s;
    }

    /** Releases {@code s} when {@code owner} becomes unreachable (unless freed before). */
    void watch(Object owner, Slot s) {
        CLEANER.register(owner, () -> dropped.add(s));
    }

    /** Returns a slot's memory (idempotent). */
    void free(Slot s) {
        if (s.released) {
            return;
        }
        s.released = true;
        live.remove(s);
        if (s.address != 0) {
            if (s.use == Use.KV) {
                lru.remove(s);
                residentKv -= s.bytes;
            }
            free.get(s.use).computeIfAbsent(s.bytes, b -> new ArrayDeque<>()).push(s.address);
            s.address = 0;
        }
        if (s.mirror != 0) {
            port.freeHost(s.mirror);
            mirroredKv -= s.bytes;
            s.mirror = 0;
        }
    }

    /** Marks a KV slot most recently used and makes it resident, uploading its mirror if it was evicted. */
    void ensureResident(Slot s, String what) {
        if (s.released) {
            throw new IllegalStateException(what + " was used after it was freed");
        }
        if (s.use != Use.KV) {
            return;
        }
        if (s.address != 0) {
            lru.remove(s);
            lru.add(s);
            return;
        }
        s.pins++; // not a victim of its own upload
        try {
            s.address = obtain(Use.KV, s.bytes, what);
        } finally {
            s.pins--;
        }
        port.upload(s.mirror, s.address, s.bytes);
        uploads++;
        lru.add(s);
        residentKv += s.bytes;
    }

    /** The device now holds newer data than the slot's mirror (a kernel or copy wrote it). */
    void deviceWritten(Slot s) {
        s.mirrorCurrent = false;
    }

    /** Makes a KV slot resident and keeps it from eviction until {@link #unpinAll}. */
    void pin(Slot s, String what) {
        ensureResident(s, what);
        s.pins++;
        pinned.add(s);
    }

    void unpinAll() {
        for (Slot s : pinned) {
            s.pins--;
        }
        pinned.clear();
    }

    private long obtain(Use use, long bytes, String what) {
        while (true) {
            ArrayDeque<Long> q = free.get(use).get(bytes);
            if (q != null && !q.isEmpty()) {
                return q.pop();
            }
            if (budget.tryReserve(use, bytes)) {
                try {
                    return port.alloc(bytes);
                } catch (RuntimeException e) {
                    budget.release(use, bytes);
                    throw e;
                }
            }
            if (trimFreeLists() > 0) {
                continue;
            }
            Slot victim = eldestUnpinned();
            if (victim == null) {
                throw budget.exhausted(use, bytes, what + " (every KV buffer on the device is in use by this step)");
            }
            long address = evict(victim);
            if (victim.bytes == bytes && use == Use.KV) {
                return address;
            }
            port.free(address);
            budget.release(Use.KV, victim.bytes);
        }
    }

    private Slot eldestUnpinned() {
        for (Slot s : lru) {
            if (s.pins == 0) {
                return s;
            }
        }
        return null;
    }

    /** Moves a KV slot to its host mirror. @return the device memory it held, now unowned */
    private long evict(Slot s) {
        if (!s.mirrorCurrent) {
            if (s.mirror == 0) {
                s.mirror = port.allocHost(s.bytes);
                mirroredKv += s.bytes;
            }
            port.download(s.address, s.mirror, s.bytes);
            s.mirrorCurrent = true;
        }
        lru.remove(s);
        residentKv -= s.bytes;
        long a = s.address;
        s.address = 0;
        evictions++;
        return a;
    }

    /** Returns every free-listed buffer to the device. @return bytes returned */
    long trimFreeLists() {
        long n = 0;
        for (Map.Entry<Use, TreeMap<Long, ArrayDeque<Long>>> e : free.entrySet()) {
            for (Iterator<Map.Entry<Long, ArrayDeque<Long>>> it =
                            e.getValue().entrySet().iterator();
                    it.hasNext(); ) {
                Map.Entry<Long, ArrayDeque<Long>> b = it.next();
                for (long a : b.getValue()) {
                    port.free(a);
                    budget.release(e.getKey(), b.getKey());
                    n += b.getKey();
                }
                it.remove();
            }
        }
        return n;
    }

    /** Releases the slots whose owners became unreachable. */
    void drainDropped() {
        Slot s;
        while ((s = dropped.poll()) != null) {
            free(s);
        }
    }

    long evictions() {
        return evictions;
    }

    long uploads() {
        return uploads;
    }

    /** Bytes of KV buffers resident on the device. */
    long residentKvBytes() {
        return residentKv;
    }

    /** Bytes of host mirrors of KV buffers. */
    long mirroredKvBytes() {
        return mirroredKv;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("device memory used after close");
        }
    }

    /**
     * Returns every buffer this backend holds to the device, and their reservations to the budget. Slots still
     * referenced become unusable. Order: pending releases, then live slots (into the free lists), then the free lists.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        drainDropped();
        for (Slot s : new ArrayList<>(live)) {
            free(s);
        }
        closed = true;
        trimFreeLists();
    }

    /** Slots allocated and not yet freed. */
    int liveSlots() {
        return live.size();
    }
}
