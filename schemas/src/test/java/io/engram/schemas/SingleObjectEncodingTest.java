package io.engram.schemas;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.List;
import org.apache.avro.message.MissingSchemaException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The wire format: single-object encoding through the generated classes. This module's Surefire runs without
 * {@code -Dorg.apache.avro.SERIALIZABLE_PACKAGES} (see schemas/pom.xml), so these tests also prove that {@link
 * EngramSchemas#trustEngramClasses()} alone lets Avro 1.12.2 decode into our classes.
 */
class SingleObjectEncodingTest {

    @BeforeAll
    static void trust() {
        EngramSchemas.trustEngramClasses();
        EngramSchemas.trustEngramClasses(); // idempotent
    }

    static EngramEvent query() {
        return EngramEvent.newBuilder()
                .setSessionId("s-1")
                .setEventId("e-1")
                .setTimestampMs(1_700_000_000_000L)
                .setPayload(QueryEvent.newBuilder()
                        .setQueryId("q-1")
                        .setQuestion("What is the vault code? ünïcødé ✓")
                        .setOptions(GenerationOptions.newBuilder()
                                .setSeed(7L)
                                .setStop(List.of("\n\n"))
                                .build())
                        .build())
                .build();
    }

    @Test
    void eventRoundTripsWithHeaderAndFingerprint() throws Exception {
        ByteBuffer bytes = EngramEvent.getEncoder().encode(query());
        assertThat(bytes.get(0)).isEqualTo((byte) 0xC3);
        assertThat(bytes.get(1)).isEqualTo((byte) 0x01);

        EngramEvent back = EngramEvent.getDecoder().decode(bytes);
        assertThat(back).isEqualTo(query());
        QueryEvent q = (QueryEvent) back.getPayload();
        assertThat(q.getQuestion()).isInstanceOf(String.class).endsWith("✓");
        assertThat(q.getOptions().getMaxNewTokens()).as("schema default").isEqualTo(256);
        assertThat(q.getOptions().getTopK()).isNull();
        assertThat(back.getSource()).isNull();
    }

    @Test
    void enumsAndNestedRecordsOfOutputsRoundTrip() throws Exception {
        DeadLetter letter = DeadLetter.newBuilder()
                .setSource(new SourceCoordinates("in", 1, 42L))
                .setReason("bad")
                .setErrorClass(ErrorClass.KEY_MISMATCH)
                .setTimestampMs(5L)
                .build();
        assertThat(DeadLetter.getDecoder().decode(DeadLetter.getEncoder().encode(letter)))
                .isEqualTo(letter);
    }

    @Test
    void aDecoderRefusesAnotherSchemasBytes() throws Exception {
        ByteBuffer coordinates = SourceCoordinates.getEncoder().encode(new SourceCoordinates("t", 0, 1L));
        assertThatThrownBy(() -> EngramEvent.getDecoder().decode(coordinates))
                .isInstanceOf(MissingSchemaException.class);
    }

    @Test
    void trustCoversOurPackageOnly() {
        assertThat(EngramSchemas.isEngramClass(ContentKind.class)).isTrue();
        assertThat(EngramSchemas.isEngramClass(String.class)).isFalse();
        assertThat(EngramSchemas.isEngramClass(org.apache.avro.Schema.class)).isFalse();
    }
}
