package io.engram.state.session;

import io.engram.engine.memory.PolicySnapshot;
import io.engram.schemas.BlockMass;
import io.engram.schemas.MemoryUnit;
import io.engram.schemas.MemoryUnitKind;
import io.engram.schemas.PolicyState;
import io.engram.state.codec.CorruptMemoryException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A memory policy's {@link PolicySnapshot} as the Avro records that store it: one {@link PolicyState} per session
 * (where packing stopped, boundaries, retained tokens, window attention mass) and one {@link MemoryUnit} per unit (its
 * range and representative keys as little-endian floats), and back. Where the records are kept (Flink keyed state,
 * another store) is the caller's business.
 */
public final class PolicyStateCodec {
    private PolicyStateCodec() {}

    /** The session record of {@code snap}, for memory that ends at {@code nextSeq} (units are stored apart). */
    public static PolicyState state(PolicySnapshot snap, long nextSeq) {
        List<Long> bounds = new ArrayList<>(snap.boundaries().length);
        for (long b : snap.boundaries()) {
            bounds.add(b);
        }
        List<Long> kept = new ArrayList<>(snap.retained().length);
        for (long k : snap.retained()) {
            kept.add(k);
        }
        List<Float> scores = new ArrayList<>(snap.retainedScores().length);
        for (float f : snap.retainedScores()) {
            scores.add(f);
        }
        return PolicyState.newBuilder()
                .setPolicy(snap.policy())
                .setNextSeq(nextSeq)
                .setPackedEnd(snap.packedEnd())
                .setUnitCount(snap.unitCount())
                .setBoundaries(bounds)
                .setRetainedSeqs(kept)
                .setRetainedScores(scores)
                .setEvicted(snap.evicted())
                .setWindowMass(massRecords(snap))
                .setContiguity(contiguityRecords(snap))
                .build();
    }

    /**
     * The session record of {@code snap} with the logits that score the session's next token ({@code carried}: null
     * when none; values a bfloat16 holds exactly, as {@code KvCache} carries them).
     */
    public static PolicyState state(PolicySnapshot snap, long nextSeq, float[] carried) {
        PolicyState ps = state(snap, nextSeq);
        if (carried != null) {
            ByteBuffer b = ByteBuffer.allocate(carried.length * 2).order(ByteOrder.LITTLE_ENDIAN);
            for (float f : carried) {
                b.putShort((short) (Float.floatToRawIntBits(f) >>> 16));
            }
            b.flip();
            ps.setCarriedLogits(b);
        }
        return ps;
    }

    /**
     * The logits {@code ps} carries for the session's next token, or null.
     *
     * @throws CorruptMemoryException when the record does not hold whole bfloat16 values
     */
    public static float[] carriedLogits(PolicyState ps) {
        ByteBuffer b = ps.getCarriedLogits().duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() == 0) {
            return null;
        }
        if (b.remaining() % 2 != 0) {
            throw new CorruptMemoryException(
                    "carried logits hold " + b.remaining() + " bytes, not whole bfloat16 values");
        }
        float[] out = new float[b.remaining() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = Float.intBitsToFloat((b.getShort() & 0xFFFF) << 16);
        }
        return out;
    }

    /**
     * The snapshot {@code ps} and its units (unit {@code i} at index {@code i}) describe.
     *
     * @throws CorruptMemoryException when a unit is missing or a record does not hold whole floats
     */
    public static PolicySnapshot snapshot(PolicyState ps, List<MemoryUnit> units) {
        if (units.size() != ps.getUnitCount() || units.contains(null)) {
            throw new CorruptMemoryException("policy state lists %d units but %d are stored"
                    .formatted(
                            ps.getUnitCount(),
                            units.stream().filter(u -> u != null).count()));
        }
        List<PolicySnapshot.Unit> restored = new ArrayList<>(units.size());
        for (MemoryUnit u : units) {
            restored.add(unit(u));
        }
        long[] bounds = ps.getBoundaries().stream().mapToLong(Long::longValue).toArray();
        long[] kept = ps.getRetainedSeqs().stream().mapToLong(Long::longValue).toArray();
        float[] scores = new float[ps.getRetainedScores().size()];
        for (int i = 0; i < scores.length; i++) {
            scores[i] = ps.getRetainedScores().get(i);
        }
        long[][] contiguity = new long[ps.getContiguity().size()][];
        for (int l = 0; l < contiguity.length; l++) {
            contiguity[l] = ps.getContiguity().get(l).stream()
                    .mapToLong(Long::longValue)
                    .toArray();
        }
        return new PolicySnapshot(
                ps.getPolicy(),
                ps.getPackedEnd(),
                ps.getUnitCount(),
                0,
                restored,
                bounds,
                kept,
                scores,
                ps.getEvicted(),
                massOf(ps),
                contiguity);
    }

    public static MemoryUnit unit(PolicySnapshot.Unit u) {
        int layers = u.repr().length;
        int kvDim = u.repr()[0].length;
        ByteBuffer b = ByteBuffer.allocate(layers * kvDim * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float[] row : u.repr()) {
            for (float f : row) {
                b.putFloat(f);
            }
        }
        b.flip();
        return MemoryUnit.newBuilder()
                .setStartSeq(u.start())
                .setEndSeq(u.end())
                .setKind(u.episode() ? MemoryUnitKind.EPISODE : MemoryUnitKind.BLOCK)
                .setLayers(layers)
                .setKvDim(kvDim)
                .setReprKeys(b)
                .setIndexLists(
                        u.lists() == null
                                ? List.of()
                                : Arrays.stream(u.lists()).boxed().toList())
                .build();
    }

    /** @throws CorruptMemoryException when the record's keys are not {@code layers x kvDim} floats */
    public static PolicySnapshot.Unit unit(MemoryUnit u) {
        ByteBuffer b = u.getReprKeys().duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() != u.getLayers() * u.getKvDim() * 4) {
            throw new CorruptMemoryException("memory unit [%d, %d) holds %d bytes of keys for %d x %d floats"
                    .formatted(u.getStartSeq(), u.getEndSeq(), b.remaining(), u.getLayers(), u.getKvDim()));
        }
        float[][] repr = new float[u.getLayers()][u.getKvDim()];
        for (float[] row : repr) {
            for (int j = 0; j < row.length; j++) {
                row[j] = b.getFloat();
            }
        }
        int[] lists = u.getIndexLists().isEmpty()
                ? null
                : u.getIndexLists().stream().mapToInt(Integer::intValue).toArray();
        return new PolicySnapshot.Unit(
                u.getStartSeq(), u.getEndSeq(), u.getKind() == MemoryUnitKind.EPISODE, repr, lists);
    }

    private static List<List<Long>> contiguityRecords(PolicySnapshot snap) {
        List<List<Long>> out = new ArrayList<>(snap.contiguity().length);
        for (long[] layer : snap.contiguity()) {
            out.add(Arrays.stream(layer).boxed().toList());
        }
        return out;
    }

    private static List<BlockMass> massRecords(PolicySnapshot snap) {
        List<BlockMass> out = new ArrayList<>(snap.windowMass().size());
        for (PolicySnapshot.BlockMass m : snap.windowMass()) {
            ByteBuffer b = ByteBuffer.allocate(m.mass().length * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (float f : m.mass()) {
                b.putFloat(f);
            }
            b.flip();
            out.add(new BlockMass(m.firstSeq(), b));
        }
        return out;
    }

    private static List<PolicySnapshot.BlockMass> massOf(PolicyState ps) {
        List<PolicySnapshot.BlockMass> out = new ArrayList<>(ps.getWindowMass().size());
        for (BlockMass m : ps.getWindowMass()) {
            ByteBuffer b = m.getMass().duplicate().order(ByteOrder.LITTLE_ENDIAN);
            if (b.remaining() % 4 != 0) {
                throw new CorruptMemoryException("window mass of block " + m.getFirstSeq() + " holds " + b.remaining()
                        + " bytes, not whole floats");
            }
            float[] f = new float[b.remaining() / 4];
            for (int i = 0; i < f.length; i++) {
                f[i] = b.getFloat();
            }
            out.add(new PolicySnapshot.BlockMass(m.getFirstSeq(), f));
        }
        return out;
    }
}
