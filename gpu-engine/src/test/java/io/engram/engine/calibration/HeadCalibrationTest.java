package io.engram.engine.calibration;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.tokenizer.Tokenizers;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Retrieval-score calibration on the shipped model, which does copy pass keys: the model answers the tasks it is given,
 * and the scores single out heads (some well above zero, not all alike). A calibration that scored every head 0, or
 * every head the same, fails here.
 */
class HeadCalibrationTest {

    @Test
    void theShippedModelsCopyingHeadsScoreAboveTheRest() throws Exception {
        Path dir = Path.of("..", "models", "engram-tiny").toAbsolutePath().normalize();
        assumeTrue(Files.isRegularFile(dir.resolve("config.json")), "models/engram-tiny is not in this checkout");
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(2, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(64, 256, 2, false));
            HeadCalibration cal = new HeadCalibration(t, Tokenizers.fromHuggingFace(dir));
            HeadCalibration.Result r = cal.run(new int[] {200, 320}, new double[] {0.3, 0.7}, 6, 10, false, 3, i -> {});
            assertThat(r.counted()).as("tasks the model answered").isPositive();
            float max = 0;
            float min = Float.MAX_VALUE;
            for (float[] row : r.scores()) {
                for (float v : row) {
                    max = Math.max(max, v);
                    min = Math.min(min, v);
                }
            }
            assertThat(max).as("the best head's retrieval score").isGreaterThan(0.1f);
            assertThat(max - min).as("heads told apart").isGreaterThan(0.05f);
        }
    }
}
