package io.engram.operators.session;

import io.engram.engine.backend.Backends;
import java.util.Optional;
import org.apache.flink.api.common.externalresource.ExternalResourceInfo;
import org.apache.flink.api.common.functions.RuntimeContext;

/**
 * The GPU Flink's "gpu" external resource assigned a task manager (its first "index"), or 0 without one. Every slot of
 * the task manager gets the same device and shares its weights (one engine per task manager GPU).
 */
final class TaskGpu {
    private TaskGpu() {}

    static int ordinal(Backends.Device device, RuntimeContext context) {
        if (device == Backends.Device.CPU) {
            return 0;
        }
        for (ExternalResourceInfo info : context.getExternalResourceInfos("gpu")) {
            Optional<String> index = info.getProperty("index");
            if (index.isPresent()) {
                return Integer.parseInt(index.get().strip());
            }
        }
        return 0;
    }
}
