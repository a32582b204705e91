package io.engram.state.codec;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.engram.engine.backend.HostBuf;
import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class KvBlockCodecTest {
    final CpuBackend backend = new CpuBackend(1, false);

    KvBlock filled(KvCache cache, int n) {
        SplittableRandom r = new SplittableRandom(3);
        int[] toks = new int[n];
        int[] pos = new int[n];
        long[] src = new long[n];
        for (int i = 0; i < n; i++) {
            toks[i] = r.nextInt(500);
            pos[i] = i;
            src[i] = ((long) i << 32) | (i * 3);
        }
        var placed = cache.append(toks, pos, src);
        KvBlock b = placed.get(0).block();
        for (int l = 0; l < cache.layers(); l++) {
            float[] k = HostBuf.of(b.keys(l));
            float[] v = HostBuf.of(b.values(l));
            for (int i = 0; i < n * cache.kvDim(); i++) {
                k[i] = (float) r.nextGaussian();
                v[i] = (float) r.nextGaussian();
            }
        }
        return b;
    }

    @Test
    void roundTripIsExactForFilledSlots() {
        KvCache cache = new KvCache(backend, 3, 16, 8);
        KvBlock b = filled(cache, 5);
        b.setScore(1, 3.25f);
        b.setScore(4, 0.5f);
        byte[] bytes = KvBlockCodec.encode(b, backend, 16);
        KvCache other = new KvCache(backend, 3, 16, 8);
        KvBlock d = KvBlockCodec.decode(bytes, other, backend, "session s block 0");
        assertThat(d.id()).isEqualTo(b.id());
        assertThat(d.firstSeq()).isEqualTo(b.firstSeq());
        assertThat(d.length()).isEqualTo(5);
        for (int i = 0; i < 5; i++) {
            assertThat(d.token(i)).isEqualTo(b.token(i));
            assertThat(d.position(i)).isEqualTo(b.position(i));
            assertThat(d.source(i)).isEqualTo(b.source(i));
            assertThat(Float.floatToIntBits(d.score(i)))
                    .as("token score %d (NaN when unknown)", i)
                    .isEqualTo(Float.floatToIntBits(b.score(i)));
        }
        for (int l = 0; l < 3; l++) {
            assertThat(java.util.Arrays.copyOf(HostBuf.of(d.keys(l)), 5 * 16))
                    .isEqualTo(java.util.Arrays.copyOf(HostBuf.of(b.keys(l)), 5 * 16));
            assertThat(java.util.Arrays.copyOf(HostBuf.of(d.values(l)), 5 * 16))
                    .isEqualTo(java.util.Arrays.copyOf(HostBuf.of(b.values(l)), 5 * 16));
        }
        assertThat(KvBlockCodec.encode(d, backend, 16)).isEqualTo(bytes);
    }

    @Test
    void version3BlocksWithoutHeadMasksAndVersion2WithoutTokenScoresAreStillRead() {
        KvCache cache = new KvCache(backend, 2, 4, 4);
        KvBlock b = filled(cache, 3);
        b.setScore(0, 1.5f);
        byte[] v4 = KvBlockCodec.encode(b, backend, 4);
        int header = 1 + 1 + 8 + 8 + 16;
        int scoresAt = header + 3 * (4 + 4 + 8);
        int masksAt = scoresAt + 3 * 4;
        // as version 3 wrote it: no head-mask count after the scores
        byte[] v3 = older(v4, masksAt, 4, 3);
        KvBlock d3 = KvBlockCodec.decode(v3, new KvCache(backend, 2, 4, 4), backend, "s/b0");
        assertThat(d3.score(0)).isEqualTo(1.5f);
        assertThat(d3.maskedKvHeads()).isZero();
        assertThat(java.util.Arrays.copyOf(HostBuf.of(d3.values(1)), 12))
                .isEqualTo(java.util.Arrays.copyOf(HostBuf.of(b.values(1)), 12));
        float[] k = new float[12];
        float[] v = new float[12];
        KvBlockCodec.decodeLayer(v3, 1, 4, k, v, "s/b0");
        assertThat(v).isEqualTo(java.util.Arrays.copyOf(HostBuf.of(b.values(1)), 12));
        // as version 2 wrote it: no score array either
        byte[] v2 = older(v3, scoresAt, 12, 2);
        KvBlock d = KvBlockCodec.decode(v2, new KvCache(backend, 2, 4, 4), backend, "s/b0");
        assertThat(d.length()).isEqualTo(3);
        assertThat(d.token(2)).isEqualTo(b.token(2));
        assertThat(Float.isNaN(d.score(0))).as("scores unknown in version 2").isTrue();
        assertThat(java.util.Arrays.copyOf(HostBuf.of(d.values(1)), 12))
                .isEqualTo(java.util.Arrays.copyOf(HostBuf.of(b.values(1)), 12));
    }

    /** {@code bytes} without {@code cut} bytes at {@code at}, with version byte {@code version} and its own checksum. */
    private static byte[] older(byte[] bytes, int at, int cut, int version) {
        byte[] out = new byte[bytes.length - cut];
        System.arraycopy(bytes, 0, out, 0, at);
        System.arraycopy(bytes, at + cut, out, at, bytes.length - at - cut - 4);
        out[0] = (byte) version;
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(out, 0, out.length - 4);
        java.nio.ByteBuffer.wrap(out).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(out.length - 4, (int)
                crc.getValue());
        return out;
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(KvDType.class)
    void everySingleBitFlipAndEveryTruncationIsDetected(KvDType type) {
        KvCache cache = new KvCache(backend, 1, 4, 4);
        byte[] bytes = KvBlockCodec.encode(filled(cache, 3), backend, 4, type);
        for (int i = 0; i < bytes.length; i++) {
            for (int bit = 0; bit < 8; bit++) {
                byte[] bad = bytes.clone();
                bad[i] ^= (byte) (1 << bit);
                assertThatThrownBy(() -> KvBlockCodec.decode(bad, new KvCache(backend, 1, 4, 4), backend, "s/b0"))
                        .isInstanceOf(CorruptMemoryException.class)
                        .hasMessageContaining("s/b0");
            }
        }
        for (int len = 0; len < bytes.length; len++) {
            byte[] cut = java.util.Arrays.copyOf(bytes, len);
            assertThatThrownBy(() -> KvBlockCodec.decode(cut, new KvCache(backend, 1, 4, 4), backend, "s/b0"))
                    .isInstanceOf(CorruptMemoryException.class);
        }
    }

    @Test
    void headerAndEncodedSizeMatchTheEncodingWithoutAModel() {
        KvCache cache = new KvCache(backend, 3, 16, 8);
        KvBlock b = filled(cache, 5);
        for (KvDType type : KvDType.values()) {
            byte[] bytes = KvBlockCodec.encode(b, backend, 16, type);
            assertThat((long) bytes.length).as("%s", type).isEqualTo(KvBlockCodec.encodedSize(5, 3, 16, type));
            KvBlockCodec.Header h = KvBlockCodec.header(bytes, "b");
            assertThat(h)
                    .isEqualTo(new KvBlockCodec.Header(
                            KvBlockCodec.VERSION,
                            type,
                            b.id(),
                            b.firstSeq(),
                            8,
                            5,
                            3,
                            16,
                            KvBlockCodec.checksum(bytes),
                            true));
            bytes[40] ^= 4;
            assertThat(KvBlockCodec.header(bytes, "b").checksumOk())
                    .as("damaged %s", type)
                    .isFalse();
        }
    }

    @Test
    void aBlockOfAnotherModelShapeIsRefused() {
        byte[] bytes = KvBlockCodec.encode(filled(new KvCache(backend, 2, 8, 4), 2), backend, 8);
        assertThatThrownBy(() -> KvBlockCodec.decode(bytes, new KvCache(backend, 2, 16, 4), backend, "s/b0"))
                .isInstanceOf(CorruptMemoryException.class)
                .hasMessageContaining("does not fit");
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(KvDType.class)
    void oneLayerDecodesAloneAsTheWholeBlockDecodesIt(KvDType type) {
        KvCache cache = new KvCache(backend, 3, 64, 8);
        KvBlock b = filled(cache, 6);
        byte[] bytes = KvBlockCodec.encode(b, backend, 64, type);
        KvBlock whole = KvBlockCodec.decode(bytes, new KvCache(backend, 3, 64, 8), backend, "s/b0");
        for (int l = 0; l < 3; l++) {
            float[] k = new float[6 * 64];
            float[] v = new float[6 * 64];
            assertThat(KvBlockCodec.decodeLayer(bytes, l, 64, k, v, "s/b0")).isEqualTo(6);
            assertThat(k).as("layer %d keys", l).isEqualTo(java.util.Arrays.copyOf(HostBuf.of(whole.keys(l)), 6 * 64));
            assertThat(v)
                    .as("layer %d values", l)
                    .isEqualTo(java.util.Arrays.copyOf(HostBuf.of(whole.values(l)), 6 * 64));
        }
        float[] big = new float[8 * 64];
        KvBlockCodec.decodeLayer(bytes, 2, 64, big, new float[8 * 64], "s/b0");
        assertThat(java.util.Arrays.copyOf(big, 6 * 64))
                .isEqualTo(java.util.Arrays.copyOf(HostBuf.of(whole.keys(2)), 6 * 64));
        assertThatThrownBy(() -> KvBlockCodec.decodeLayer(bytes, 3, 64, big, big, "s/b0"))
                .isInstanceOf(CorruptMemoryException.class)
                .hasMessageContaining("has no layer 3");
        assertThatThrownBy(() -> KvBlockCodec.decodeLayer(
                        java.util.Arrays.copyOf(bytes, bytes.length - 40), 2, 64, big, big, "s/b0"))
                .isInstanceOf(CorruptMemoryException.class)
                .hasMessageContaining("too short");
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(KvDType.class)
    void compressedTypesStayWithinTheirErrorBoundAndDetectDamage(KvDType type) {
        KvCache cache = new KvCache(backend, 2, 64, 8);
        KvBlock b = filled(cache, 7);
        byte[] bytes = KvBlockCodec.encode(b, backend, 64, type);
        KvBlock d = KvBlockCodec.decode(bytes, new KvCache(backend, 2, 64, 8), backend, "s/b0");
        double worstRel = 0;
        for (int l = 0; l < 2; l++) {
            float[] x = HostBuf.of(b.keys(l));
            float[] y = HostBuf.of(d.keys(l));
            for (int g = 0; g < 7 * 64; g += 32) {
                float amax = 0;
                for (int i = g; i < g + 32; i++) {
                    amax = Math.max(amax, Math.abs(x[i]));
                }
                for (int i = g; i < g + 32; i++) {
                    double err = Math.abs(x[i] - y[i]);
                    switch (type) {
                        case F32 -> assertThat(err).isZero();
                        case BF16 -> assertThat(err).isLessThanOrEqualTo(Math.abs(x[i]) / 256.0);
                        case INT8 -> assertThat(err).isLessThanOrEqualTo(amax / 127.0 / 2 + 1e-7);
                        case INT4 -> assertThat(err).isLessThanOrEqualTo(amax / 7.0 / 2 + 1e-6);
                    }
                    worstRel = Math.max(worstRel, err / Math.max(1e-6, amax));
                }
            }
        }
        System.out.printf(
                "KV %s: %d bytes for 7 tokens x 2 layers x 64 (F32 would be %d); worst error / group max-abs %.2e%n",
                type, bytes.length, KvBlockCodec.encode(b, backend, 64, KvDType.F32).length, worstRel);
        byte[] bad = bytes.clone();
        bad[bad.length / 2] ^= 4;
        assertThatThrownBy(() -> KvBlockCodec.decode(bad, new KvCache(backend, 2, 64, 8), backend, "s/b0"))
                .isInstanceOf(CorruptMemoryException.class)
                .hasMessageContaining("checksum");
    }

    @Test
    void droppedHeadsAreLeftOutAndComeBackAsZerosWithTheirMasks() {
        KvCache cache = new KvCache(backend, 3, 16, 8); // 4 KV heads of 4 dims
        KvBlock b = filled(cache, 8);
        byte[] whole = KvBlockCodec.encode(b, backend, 16, KvDType.INT8);
        float[] before = java.util.Arrays.copyOf(HostBuf.of(b.keys(0)), 8 * 16);
        cache.dropHeads(b, new long[] {0b0101, 0b1111, 0}, 4); // layer 0: heads 0 and 2; layer 1: every head
        assertThat(cache.drainRewritten()).containsExactly(b);
        assertThat(cache.drainRewritten()).isEmpty();
        float[] k0 = HostBuf.of(b.keys(0));
        for (int t = 0; t < 8; t++) {
            for (int d = 0; d < 16; d++) {
                boolean dropped = d / 4 == 0 || d / 4 == 2;
                assertThat(k0[t * 16 + d]).as("token %d dim %d", t, d).isEqualTo(dropped ? 0f : before[t * 16 + d]);
            }
        }
        for (KvDType type : KvDType.values()) {
            byte[] bytes = KvBlockCodec.encode(b, backend, 16, type);
            assertThat((long) bytes.length).as("%s", type).isEqualTo(KvBlockCodec.encodedSize(b, 16, type));
            KvCache other = new KvCache(backend, 3, 16, 8);
            KvBlock d = KvBlockCodec.decode(bytes, other, backend, "session s block 0");
            assertThat(d.maskedKvHeads()).isEqualTo(4);
            assertThat(new long[] {d.droppedHeads(0), d.droppedHeads(1), d.droppedHeads(2)})
                    .containsExactly(0b0101, 0b1111, 0);
            KvBlock meta = KvBlockCodec.decodeMeta(bytes, new KvCache(backend, 3, 16, 8), "meta");
            assertThat(meta.droppedHeads(0)).isEqualTo(0b0101);
            for (int l = 0; l < 3; l++) {
                float[] k = new float[8 * 16];
                float[] v = new float[8 * 16];
                KvBlockCodec.decodeLayer(bytes, l, 16, k, v, "layer");
                if (l == 1) { // every head dropped: no buffers on either side, zeros when a layer is asked for
                    assertThat(b.vacant(1) && d.vacant(1)).isTrue();
                    assertThat(b.isResident(1) || d.isResident(1)).isFalse();
                    assertThat(k).containsOnly(0f);
                    assertThat(v).containsOnly(0f);
                    continue;
                }
                assertThat(java.util.Arrays.copyOf(HostBuf.of(d.keys(l)), 8 * 16))
                        .as("%s layer %d", type, l)
                        .isEqualTo(k);
                assertThat(java.util.Arrays.copyOf(HostBuf.of(d.values(l)), 8 * 16))
                        .isEqualTo(v);
                float[] orig = java.util.Arrays.copyOf(HostBuf.of(b.keys(l)), 8 * 16);
                for (int i = 0; i < k.length; i++) {
                    if (orig[i] == 0f) {
                        assertThat(k[i]).as("a dropped head reads zero").isZero();
                    } else if (type == KvDType.F32) {
                        assertThat(k[i]).isEqualTo(orig[i]);
                    } else {
                        assertThat(k[i]).isCloseTo(orig[i], org.assertj.core.data.Offset.offset(0.6f));
                    }
                }
            }
        }
        // layer 0 keeps half its heads, layer 1 none, layer 2 all: 6 of 12 head rows
        long kept = KvBlockCodec.encode(b, backend, 16, KvDType.F32).length;
        long all = KvBlockCodec.encodedSize(8, 3, 16, KvDType.F32);
        assertThat(all - kept).isEqualTo(2L * 8 * 4 * (2 * 4 + 4 * 4) - 8 * 3);
        assertThat(whole.length).isEqualTo(KvBlockCodec.encodedSize(8, 3, 16, KvDType.INT8));
    }
}
