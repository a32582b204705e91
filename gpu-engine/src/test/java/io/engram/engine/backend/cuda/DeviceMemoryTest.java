package io.engram.engine.backend.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.backend.cuda.GpuMemoryBudget.Use;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The CUDA backend's allocator and KV residency, on a host-array device: budget accounting, reuse, LRU eviction. */
class DeviceMemoryTest {

    /** A device made of byte arrays that checks it is never asked for more than the budget allows. */
    static final class ArrayDevice implements DevicePort {
        final Map<Long, byte[]> device = new HashMap<>();
        final Map<Long, byte[]> host = new HashMap<>();
        long next = 4096;
        long held;
        long peak;
        int allocs;
        int downloads;
        int uploads;

        @Override
        public long alloc(long bytes) {
            long a = next;
            next += bytes + 256;
            device.put(a, new byte[(int) bytes]);
            held += bytes;
            peak = Math.max(peak, held);
            allocs++;
            return a;
        }

        @Override
        public void free(long address) {
            byte[] b = device.remove(address);
            assertThat(b).as("free of unknown address %d", address).isNotNull();
            held -= b.length;
        }

        @Override
        public long allocHost(long bytes) {
            long h = -(next += bytes + 256);
            host.put(h, new byte[(int) bytes]);
            return h;
        }

        @Override
        public void freeHost(long h) {
            assertThat(host.remove(h)).isNotNull();
        }

        @Override
        public void download(long address, long h, long bytes) {
            System.arraycopy(device.get(address), 0, host.get(h), 0, (int) bytes);
            downloads++;
        }

        @Override
        public void upload(long h, long address, long bytes) {
            System.arraycopy(host.get(h), 0, device.get(address), 0, (int) bytes);
            uploads++;
        }
    }

    final ArrayDevice dev = new ArrayDevice();

    @Test
    void bucketsRoundUpByAtMostAQuarter() {
        assertThat(DeviceMemory.bucket(1)).isEqualTo(256);
        assertThat(DeviceMemory.bucket(4096)).isEqualTo(4096);
        assertThat(DeviceMemory.bucket(4097)).isEqualTo(5120);
        for (long b = 1; b < 1 << 22; b = b * 3 + 7) {
            assertThat(DeviceMemory.bucket(b)).as("bucket of %d", b).isBetween(b, Math.max(256, b + b / 4));
        }
    }

    @Test
    void freedBuffersAreReusedAndTheBudgetCountsThem() {
        GpuMemoryBudget budget = new GpuMemoryBudget(1 << 20, "test");
        try (DeviceMemory m = new DeviceMemory(dev, budget)) {
            DeviceMemory.Slot a = m.allocate(Use.ACTIVATIONS, 10_000, null, "x");
            long addr = a.address;
            m.free(a);
            assertThat(budget.used(Use.ACTIVATIONS)).isEqualTo(DeviceMemory.bucket(10_000)); // cached, still charged
            DeviceMemory.Slot b = m.allocate(Use.ACTIVATIONS, 9_000, null, "x");
            assertThat(b.address).isEqualTo(addr);
            assertThat(dev.allocs).isEqualTo(1);
            m.free(b);
        }
        assertThat(budget.used()).isZero();
        assertThat(dev.device).isEmpty();
    }

    @Test
    void cachedBuffersAreReturnedBeforeABudgetErrorAndTheBudgetIsNeverPassed() {
        GpuMemoryBudget budget = new GpuMemoryBudget(100_000, "test");
        try (DeviceMemory m = new DeviceMemory(dev, budget)) {
            DeviceMemory.Slot a = m.allocate(Use.ACTIVATIONS, 60_000, null, "a");
            m.free(a);
            DeviceMemory.Slot b = m.allocate(Use.WORKSPACE, 60_000, null, "b"); // needs a's cached bytes back
            assertThat(budget.used(Use.ACTIVATIONS)).isZero();
            assertThatThrownBy(() -> m.allocate(Use.WORKSPACE, 60_000, null, "attention partials"))
                    .isInstanceOf(GpuMemoryException.class)
                    .hasMessageContaining("attention partials")
                    .hasMessageContaining("engram.engine.gpu-memory-mb")
                    .hasMessageContaining("workspace 60.0 MiB".replace("60.0 MiB", GpuMemoryBudget.mib(b.bytes)));
        }
        assertThat(dev.peak).isLessThanOrEqualTo(100_000);
        assertThat(budget.peak()).isLessThanOrEqualTo(100_000);
    }

    @Test
    void leastRecentlyUsedKvBuffersAreEvictedToHostMirrorsAndComeBackIntact() {
        long slot = 4096;
        GpuMemoryBudget budget = new GpuMemoryBudget(3 * slot, "test"); // room for three KV buffers
        try (DeviceMemory m = new DeviceMemory(dev, budget)) {
            DeviceMemory.Slot[] kv = new DeviceMemory.Slot[5];
            for (int i = 0; i < kv.length; i++) {
                kv[i] = m.allocate(Use.KV, slot, null, "kv " + i);
                Arrays.fill(dev.device.get(kv[i].address), (byte) (i + 1)); // a kernel wrote it
                m.deviceWritten(kv[i]);
                assertThat(dev.held).isLessThanOrEqualTo(budget.limit());
            }
            // 0 and 1 were the least recently used when 3 and 4 came
            assertThat(kv[0].address).isZero();
            assertThat(kv[1].address).isZero();
            assertThat(m.evictions()).isEqualTo(2);
            assertThat(m.residentKvBytes()).isEqualTo(3 * slot);
            // using 0 again evicts 2, the eldest now, and restores 0's bytes
            m.ensureResident(kv[0], "kv 0");
            assertThat(kv[2].address).isZero();
            assertThat(dev.device.get(kv[0].address)).containsOnly((byte) 1);
            // an unchanged buffer is evicted without a second download
            int downloads = dev.downloads;
            m.ensureResident(kv[2], "kv 2"); // evicts 3
            m.ensureResident(kv[3], "kv 3"); // evicts 4
            m.ensureResident(kv[2], "kv 2"); // touch
            m.ensureResident(kv[4], "kv 4"); // evicts 0, unchanged since its upload
            assertThat(dev.downloads - downloads).isEqualTo(2); // 3 and 4 only
            for (int i = 2; i <= 4; i++) {
                assertThat(dev.device.get(kv[i].address)).as("kv %d", i).containsOnly((byte) (i + 1));
            }
            assertThat(dev.peak).isLessThanOrEqualTo(budget.limit());
        }
        assertThat(budget.used()).isZero();
        assertThat(dev.device).isEmpty();
        assertThat(dev.host).isEmpty();
    }

    @Test
    void pinnedBuffersAreNotEvictedAndAStepThatCannotFitSaysSo() {
        long slot = 4096;
        GpuMemoryBudget budget = new GpuMemoryBudget(2 * slot, "test");
        try (DeviceMemory m = new DeviceMemory(dev, budget)) {
            DeviceMemory.Slot a = m.allocate(Use.KV, slot, null, "a");
            DeviceMemory.Slot b = m.allocate(Use.KV, slot, null, "b");
            m.pin(a, "a");
            m.pin(b, "b");
            assertThatThrownBy(() -> m.allocate(Use.KV, slot, null, "c"))
                    .isInstanceOf(GpuMemoryException.class)
                    .hasMessageContaining("in use by this step");
            m.unpinAll();
            DeviceMemory.Slot c = m.allocate(Use.KV, slot, null, "c");
            assertThat(a.address).isZero(); // a was the eldest once unpinned
            assertThat(c.address).isNotZero();
        }
    }

    @Test
    void unreachableOwnersReleaseTheirBuffers() throws InterruptedException {
        GpuMemoryBudget budget = new GpuMemoryBudget(1 << 20, "test");
        try (DeviceMemory m = new DeviceMemory(dev, budget)) {
            Object owner = new Object();
            m.allocate(Use.KV, 4096, owner, "kv");
            assertThat(m.liveSlots()).isEqualTo(1);
            owner = null;
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (m.liveSlots() > 0 && System.nanoTime() < deadline) {
                System.gc();
                Thread.onSpinWait();
                m.drainDropped();
            }
            assertThat(m.liveSlots()).isZero();
            assertThat(m.residentKvBytes()).isZero();
        }
        assertThat(budget.used()).isZero();
    }

    @Test
    void budgetRejectsBadReleasesAndNonPositiveLimits() {
        GpuMemoryBudget b = new GpuMemoryBudget(100, "test");
        assertThat(b.tryReserve(Use.WEIGHTS, 60)).isTrue();
        assertThat(b.tryReserve(Use.KV, 41)).isFalse();
        assertThatThrownBy(() -> b.release(Use.KV, 1)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> new GpuMemoryBudget(0, "test")).isInstanceOf(IllegalArgumentException.class);
    }
}
