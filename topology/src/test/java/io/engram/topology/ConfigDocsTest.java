package io.engram.topology;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.topology.cli.ConfigCommand;
import io.engram.topology.options.Option;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** docs/config.md is generated from the option constants; this fails when it is stale (Flink's completeness test). */
class ConfigDocsTest {

    static final Path DOC = Path.of("..", "docs", "config.md");

    @Test
    void docsConfigMdIsCurrent() throws Exception {
        String expected = ConfigCommand.markdown(EngramOptions.all());
        if (Boolean.getBoolean("engram.docs.update")) {
            Files.writeString(DOC, expected);
        }
        assertThat(DOC)
                .as("regenerate: ./engram config list --markdown > docs/config.md")
                .exists();
        assertThat(Files.readString(DOC))
                .as("regenerate: ./engram config list --markdown > docs/config.md")
                .isEqualTo(expected);
    }

    @Test
    void everyOptionIsCollectedAndDocumented() {
        assertThat(EngramOptions.all())
                .extracting(Option::key)
                .contains(
                        KafkaOptions.BOOTSTRAP_SERVERS.key(),
                        JobOptions.CHECKPOINT_INTERVAL.key(),
                        io.engram.topology.queries.QueryOptions.HTTP_PORT.key())
                .doesNotHaveDuplicates()
                .isSorted();
        assertThat(EngramOptions.all())
                .allSatisfy(o -> assertThat(o.description()).isNotBlank());
    }
}
