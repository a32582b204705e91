package io.engram.operators;

import java.util.Arrays;
import java.util.Objects;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;

/**
 * One Kafka record exactly as read, before any decoding: what the Kafka source emits, so that reading can never fail
 * and every decoding problem becomes a dead letter with the record's coordinates.
 *
 * <p>A Flink POJO (public fields, no-arg constructor) with explicit {@link #TYPE}, so it needs no Kryo. Arrays are not
 * copied: treat an instance as owned by whoever holds it.
 */
public class RawRecord {

    /** Flink type information; use it wherever a {@code RawRecord} stream is declared. */
    public static final TypeInformation<RawRecord> TYPE = Types.POJO(RawRecord.class);

    /** Record key bytes; null when the record has no key. */
    public byte[] key;
    /** Record value bytes; null for a tombstone. */
    public byte[] value;
    /** Topic the record was read from. */
    public String topic;
    /** Partition the record was read from. */
    public int partition;
    /** Offset of the record in its partition. */
    public long offset;
    /** Kafka timestamp of the record (epoch milliseconds). */
    public long timestampMs;

    /** For Flink's POJO serializer. */
    public RawRecord() {}

    public RawRecord(byte[] key, byte[] value, String topic, int partition, long offset, long timestampMs) {
        this.key = key;
        this.value = value;
        this.topic = topic;
        this.partition = partition;
        this.offset = offset;
        this.timestampMs = timestampMs;
    }

    /** {@code topic-partition@offset}, the form every log line and error message uses. */
    public String coordinates() {
        return topic + "-" + partition + "@" + offset;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RawRecord r
                && partition == r.partition
                && offset == r.offset
                && timestampMs == r.timestampMs
                && Arrays.equals(key, r.key)
                && Arrays.equals(value, r.value)
                && Objects.equals(topic, r.topic);
    }

    @Override
    public int hashCode() {
        return Objects.hash(topic, partition, offset);
    }

    @Override
    public String toString() {
        return "RawRecord{" + coordinates() + ", key " + (key == null ? "null" : key.length + " B") + ", value "
                + (value == null ? "null" : value.length + " B") + "}";
    }
}
