package io.engram.engine.backend.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * The CPU backend's threads: the caller plus {@code threads - 1} persistent workers that take the chunks of one op at
 * a time. A fork-join pool parks its workers between ops and pays a wake-up per op; a decode step of a small model is
 * dozens of ops of a few microseconds each, so that hand-off cost more than the work (2 threads decoded slower than
 * 1). Here a worker spins for {@link #SPIN_NANOS} after each op before it parks, so ops that follow each other reach
 * running workers, and an idle backend costs no CPU.
 *
 * <p>Chunk boundaries depend only on the op's count and the team size, never on which thread runs a chunk, so callers
 * that merge per-chunk results in chunk order get the same floats on every run.
 */
final class WorkerTeam implements AutoCloseable {
    /** How long a worker keeps polling for the next op before it parks. */
    private static final long SPIN_NANOS = 200_000;
    /** A parked worker also looks again after this long, whatever the unpark protocol does. */
    private static final long PARK_NANOS = 50_000_000;

    private final int threads;
    private final Thread[] workers;
    /** 1 while worker i is parked or about to park: the poster unparks it (a Dekker pair with generation). */
    private final AtomicIntegerArray parked;
    /** Bumped for every op posted; workers run an op once when they see a new value. */
    private volatile long generation;

    private volatile Op op;
    private volatile boolean closed;

    /** One posted op: its chunks, the next unclaimed chunk, and the workers that have not finished it yet. */
    private static final class Op {
        final CpuBackend.RangeBody body;
        final int count;
        final int chunks;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger running;
        final AtomicReference<Throwable> failure = new AtomicReference<>();

        Op(CpuBackend.RangeBody body, int count, int chunks, int workers) {
            this.body = body;
            this.count = count;
            this.chunks = chunks;
            this.running = new AtomicInteger(workers);
        }

        /** Claims and runs chunks until none is left; a failure stops this thread's share and is kept for the caller. */
        void work() {
            int c;
            while (failure.get() == null && (c = next.getAndIncrement()) < chunks) {
                try {
                    body.run(bound(c), bound(c + 1));
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }
        }

        private int bound(int c) {
            return (int) ((long) c * count / chunks);
        }
    }

    WorkerTeam(int threads) {
        if (threads < 2) {
            throw new IllegalArgumentException("a worker team needs at least 2 threads, got " + threads);
        }
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        this.parked = new AtomicIntegerArray(threads - 1);
        for (int i = 0; i < workers.length; i++) {
            int id = i;
            workers[i] = Thread.ofPlatform()
                    .daemon()
                    .name("engram-cpu-worker-" + (i + 1))
                    .unstarted(() -> loop(id));
            workers[i].start();
        }
    }

    /**
     * Runs {@code body} over {@code [0, count)} split into {@code chunks} contiguous ranges, on the caller and every
     * worker, and returns when all ranges are done. The first exception of any range is rethrown here.
     */
    void run(int count, int chunks, CpuBackend.RangeBody body) {
        if (closed) {
            throw new IllegalStateException("the CPU backend is closed");
        }
        Op o = new Op(body, count, Math.max(1, Math.min(chunks, count)), workers.length);
        op = o;
        generation++; // single poster: the backend is used by one caller thread at a time
        for (int i = 0; i < workers.length; i++) {
            if (parked.get(i) == 1) {
                LockSupport.unpark(workers[i]);
            }
        }
        o.work();
        while (o.running.get() > 0) {
            Thread.onSpinWait();
        }
        Throwable t = o.failure.get();
        if (t instanceof RuntimeException re) {
            throw re;
        }
        if (t instanceof Error e) {
            throw e;
        }
        if (t != null) {
            throw new IllegalStateException(t);
        }
    }

    int threads() {
        return threads;
    }

    private void loop(int id) {
        long seen = 0;
        while (true) {
            long g = generation;
            if (g == seen) {
                long spinUntil = System.nanoTime() + SPIN_NANOS;
                while ((g = generation) == seen && !closed && System.nanoTime() < spinUntil) {
                    Thread.onSpinWait();
                }
                if (g == seen && !closed) {
                    parked.set(id, 1);
                    if (generation == seen && !closed) {
                        LockSupport.parkNanos(this, PARK_NANOS);
                    }
                    parked.set(id, 0);
                    continue;
                }
            }
            if (closed) {
                return;
            }
            seen = g;
            Op o = op;
            o.work();
            o.running.decrementAndGet();
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
    }
}
