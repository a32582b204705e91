package io.engram.topology.queries;

import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Tells waiting readers that a session's stores changed: the {@link SessionLog} processors call {@link #touch} after
 * each write, and the web view's live streams {@link #await} the next version of their session.
 *
 * <p>A version is a per-session counter that only grows; 0 means never touched. Thread-safe: touched from the Streams
 * threads, awaited from HTTP threads.
 */
public final class SessionChanges {

    private final ConcurrentHashMap<String, Long> versions = new ConcurrentHashMap<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();

    /** Marks {@code session} changed and wakes its waiters. */
    public void touch(String session) {
        versions.merge(session, 1L, Long::sum);
        lock.lock();
        try {
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** The session's current version (0 if it was never touched). */
    public long version(String session) {
        return versions.getOrDefault(session, 0L);
    }

    /**
     * Waits until the session's version differs from {@code seen}, or {@code timeout} passes.
     *
     * @return the version now (equal to {@code seen} when it timed out)
     * @throws InterruptedException when the waiting thread is interrupted (the server is closing)
     */
    public long await(String session, long seen, Duration timeout) throws InterruptedException {
        long nanos = timeout.toNanos();
        lock.lock();
        try {
            while (version(session) == seen && nanos > 0) {
                nanos = changed.awaitNanos(nanos);
            }
        } finally {
            lock.unlock();
        }
        return version(session);
    }
}
