package io.engram.engine.backend.cuda;

import java.util.EnumMap;
import java.util.Map;

/**
 * The bytes of device memory this process may hold on one GPU, and what holds them. Every device allocation of the
 * CUDA backend is reserved here first, so the budget is never exceeded: a reservation that would pass it fails (and
 * the caller may free cached buffers or evict KV blocks and try again) or throws {@link GpuMemoryException} naming
 * what was being allocated and how the budget is spent. Pure bookkeeping, no device calls; thread-safe (one budget is
 * shared by every backend of the process on that device).
 */
public final class GpuMemoryBudget {

    /** What a reservation is for. */
    public enum Use {
        /** Model weights, uploaded once per process and shared by all sessions. */
        WEIGHTS,
        /** KV blocks of sessions' caches. */
        KV,
        /** Activations and scratch of forward steps (pooled). */
        ACTIVATIONS,
        /** RoPE tables, attention partials, segment tables. */
        WORKSPACE
    }

    private final long limit;
    private final String device;
    private final Map<Use, Long> used = new EnumMap<>(Use.class);
    private long total;
    private long peak;

    /**
     * @param limit bytes this process may hold on the device
     * @param device the device, for messages ("cuda:0 (NVIDIA H100 80GB HBM3)")
     */
    public GpuMemoryBudget(long limit, String device) {
        if (limit <= 0) {
            throw new IllegalArgumentException("a GPU memory budget must be positive, got " + limit + " bytes");
        }
        this.limit = limit;
        this.device = device;
        for (Use u : Use.values()) {
            used.put(u, 0L);
        }
    }

    /** Reserves {@code bytes} for {@code use} if they fit. @return whether they were reserved */
    public synchronized boolean tryReserve(Use use, long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("cannot reserve " + bytes + " bytes");
        }
        if (total + bytes > limit) {
            return false;
        }
        total += bytes;
        used.merge(use, bytes, Long::sum);
        peak = Math.max(peak, total);
        return true;
    }

    /**
     * Reserves {@code bytes} for {@code use}.
     *
     * @param what what is being allocated, for the message ("weight 'model.layers.3.mlp.up_proj.weight'")
     * @throws GpuMemoryException when they do not fit
     */
    public void reserve(Use use, long bytes, String what) {
        if (!tryReserve(use, bytes)) {
            throw exhausted(use, bytes, what);
        }
    }

    /** The exception for a reservation that does not fit, naming what holds the budget. */
    public synchronized GpuMemoryException exhausted(Use use, long bytes, String what) {
        return new GpuMemoryException(("GPU memory budget exceeded on %s: %s needs %s for %s but %s of the %s budget "
                        + "are held (weights %s, KV %s, activations %s, workspace %s). Raise the budget "
                        + "(engram.engine.gpu-memory-mb), use a smaller model, or bound the engine KV with a memory policy.")
                .formatted(
                        device,
                        what,
                        mib(bytes),
                        use.name().toLowerCase(java.util.Locale.ROOT),
                        mib(total),
                        mib(limit),
                        mib(used.get(Use.WEIGHTS)),
                        mib(used.get(Use.KV)),
                        mib(used.get(Use.ACTIVATIONS)),
                        mib(used.get(Use.WORKSPACE))));
    }

    /** Returns a reservation. */
    public synchronized void release(Use use, long bytes) {
        long held = used.get(use);
        if (bytes < 0 || bytes > held) {
            throw new IllegalStateException(
                    "releasing %d bytes of %s but only %d are reserved".formatted(bytes, use, held));
        }
        used.put(use, held - bytes);
        total -= bytes;
    }

    public long limit() {
        return limit;
    }

    public synchronized long used() {
        return total;
    }

    public synchronized long used(Use use) {
        return used.get(use);
    }

    /** The most bytes held at once since creation. */
    public synchronized long peak() {
        return peak;
    }

    public String device() {
        return device;
    }

    static String mib(long bytes) {
        return "%.1f MiB".formatted(bytes / (1024.0 * 1024.0));
    }

    @Override
    public synchronized String toString() {
        return "%s of %s on %s".formatted(mib(total), mib(limit), device);
    }
}
