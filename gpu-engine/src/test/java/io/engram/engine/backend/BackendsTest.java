package io.engram.engine.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.backend.cuda.CudaDevice;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Device selection: CPU always, CUDA only with a device (else an error with the reason), AUTO falls back to the CPU. */
class BackendsTest {
    final Optional<String> unavailable = CudaDevice.unavailableReason();

    @Test
    void cpuIsTheCpuBackend() {
        try (Backend b = Backends.open(Backends.DeviceSettings.cpu(), 0, 1, false)) {
            assertThat(b.kind()).isEqualTo(Backend.Kind.CPU);
        }
    }

    @Test
    void autoUsesCudaExactlyWhenItIsAvailable() {
        try (Backend b = Backends.open(new Backends.DeviceSettings(Backends.Device.AUTO, 0), 0, 1, false)) {
            assertThat(b.kind())
                    .as("CUDA unavailable because: %s", unavailable.orElse("-"))
                    .isEqualTo(unavailable.isPresent() ? Backend.Kind.CPU : Backend.Kind.CUDA);
        }
    }

    @Test
    void cudaWithoutADeviceFailsWithTheReason() {
        if (unavailable.isEmpty()) {
            try (Backend b = Backends.open(new Backends.DeviceSettings(Backends.Device.CUDA, 0), 0, 1, false)) {
                assertThat(b.describe()).startsWith("cuda:0");
            }
            return;
        }
        assertThatThrownBy(() -> Backends.open(new Backends.DeviceSettings(Backends.Device.CUDA, 0), 0, 1, false))
                .isInstanceOf(BackendException.class)
                .hasMessage(unavailable.get());
        assertThat(unavailable.get()).containsAnyOf("driver", "kernels", "device");
    }

    @Test
    void settingsRejectNegativeBudgets() {
        assertThatThrownBy(() -> new Backends.DeviceSettings(Backends.Device.CUDA, -1))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
