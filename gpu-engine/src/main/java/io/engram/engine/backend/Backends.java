package io.engram.engine.backend;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.backend.cuda.CudaBackend;
import io.engram.engine.backend.cuda.CudaDevice;
import java.io.Serializable;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Opens the backend a deployment asked for: the CPU, a CUDA device, or CUDA when one can be used and the CPU otherwise. */
public final class Backends {
    private static final Logger LOG = LoggerFactory.getLogger(Backends.class);

    private Backends() {}

    /** Where the engine runs. */
    public enum Device {
        /** The multi-threaded CPU backend. */
        CPU,
        /** A CUDA GPU; fails with the reason when none can be used. */
        CUDA,
        /**
         * CUDA when a device, the driver and the kernels are present and the device opens, else the CPU (logged once with
         * the reason: INFO when CUDA is absent, WARN when it is present but failed to open).
         */
        AUTO
    }

    /**
     * The device choice of an engine.
     *
     * @param gpuMemoryBytes GPU memory the process may use on its device; 0 = 90% of what is free when it opens
     */
    public record DeviceSettings(Device device, long gpuMemoryBytes) implements Serializable {
        public DeviceSettings {
            if (device == null || gpuMemoryBytes < 0) {
                throw new IllegalArgumentException(
                        "a device (cpu, cuda or auto) and a GPU memory budget >= 0 are required");
            }
        }

        public static DeviceSettings cpu() {
            return new DeviceSettings(Device.CPU, 0);
        }
    }

    /**
     * Opens the backend {@code s} asks for.
     *
     * @param gpuOrdinal the CUDA device to use (e.g. the index Flink's GPU external resource assigned the task manager)
     * @param threads CPU worker threads (CPU backend)
     * @param quantizeQ8 requantize float weights to Q8_0 (CPU backend only)
     * @throws BackendException for {@link Device#CUDA} when CUDA cannot be used, with the reason
     */
    public static Backend open(DeviceSettings s, int gpuOrdinal, int threads, boolean quantizeQ8) {
        return switch (s.device()) {
            case CPU -> new CpuBackend(threads, quantizeQ8);
            case CUDA -> CudaBackend.open(gpuOrdinal, s.gpuMemoryBytes());
            case AUTO -> {
                Optional<String> why = CudaDevice.unavailableReason();
                if (why.isPresent()) {
                    LOG.info(
                            "device auto: using the CPU ({} threads) because CUDA is unavailable: {}",
                            threads,
                            why.get());
                    yield new CpuBackend(threads, quantizeQ8);
                }
                try {
                    CudaBackend b = CudaBackend.open(gpuOrdinal, s.gpuMemoryBytes());
                    LOG.info("device auto: using {}", b.describe());
                    yield b;
                } catch (BackendException e) {
                    LOG.warn(
                            "device auto: using the CPU ({} threads) because CUDA device {} could not be opened: {}",
                            threads,
                            gpuOrdinal,
                            e.getMessage());
                    yield new CpuBackend(threads, quantizeQ8);
                }
            }
        };
    }
}
