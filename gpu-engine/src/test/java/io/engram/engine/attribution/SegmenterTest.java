package io.engram.engine.attribution;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.backend.cpu.CpuBackend;
import io.engram.engine.config.EngineSettings;
import io.engram.engine.kv.KvBlock;
import io.engram.engine.kv.KvCache;
import io.engram.engine.memory.FullAttention;
import io.engram.engine.model.Model;
import io.engram.engine.model.Transformer;
import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.session.PromptFormat;
import io.engram.engine.session.SessionEngine;
import io.engram.engine.tensor.DType;
import io.engram.engine.tokenizer.Tokenizers;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Segments tile the memory's tagged tokens, one event each, cut between words at sentence ends after the word target. */
class SegmenterTest {
    @TempDir
    Path tmp;

    static final List<String> EVENTS = List.of(
            "One two three four. Five six seven eight nine. Ten eleven. Twelve thirteen fourteen fifteen.",
            "Short event.",
            "A b c d e f g h i j k l m n o p q r s t u v w x y z and no sentence end at all here",
            "Extraordinarily overgrown vegetable gardens surrounded wonderfully mysterious lighthouses beside "
                    + "sparkling fountains underneath enormous thunderclouds throughout unforgettable afternoons");

    @Test
    void segmentsTileEachEventAndEndAtSentencesAfterTheWordTarget() {
        Path dir = TinyModels.write(tmp.resolve("m"), TinyModels.Variant.LLAMA_GQA, DType.F32, 42);
        try (Model m = Model.openHuggingFace(dir);
                CpuBackend b = new CpuBackend(1, false)) {
            Transformer t = new Transformer(m.config(), m.weights(), b, new EngineSettings(16, 32, 1, false));
            SessionEngine engine =
                    new SessionEngine(t, Tokenizers.fromHuggingFace(dir), new FullAttention(), PromptFormat.PLAIN, 4);
            KvCache mem = engine.newMemory();
            for (int i = 0; i < EVENTS.size(); i++) {
                engine.ingest(mem, EVENTS.get(i), i);
            }
            List<Segment> segs = engine.segmenter().segments(mem);
            // every tagged token is in exactly the segment of its event, in order, and segments are contiguous
            long next = segs.get(0).firstSeq();
            for (Segment s : segs) {
                assertThat(s.index()).isEqualTo(segs.indexOf(s));
                assertThat(s.firstSeq()).isEqualTo(next);
                next = s.endSeq();
                assertThat(s.charStart()).isLessThan(s.charEnd());
                String text = EVENTS.get(s.eventIndex());
                assertThat(s.charStart()).isLessThan(text.length());
                int at = s.charStart();
                assertThat(at == 0
                                || Character.isWhitespace(text.charAt(at))
                                || Character.isWhitespace(text.charAt(at - 1)))
                        .as(
                                "segment %d starts at a word, not inside one: %s|%s",
                                s.index(), text.substring(0, at), text.substring(at))
                        .isTrue();
            }
            assertThat(next).isEqualTo(mem.nextSeq());
            for (KvBlock bl : mem.blocks()) {
                for (int i = 0; i < bl.length(); i++) {
                    long tag = bl.source(i);
                    long seq = bl.seq(i);
                    if (tag != Provenance.NONE && seq >= segs.get(0).firstSeq()) {
                        Segment s = segs.stream()
                                .filter(g -> g.contains(seq))
                                .findFirst()
                                .orElseThrow();
                        assertThat(s.eventIndex()).isEqualTo(Provenance.eventIndex(tag));
                    }
                }
            }
            // event 0: cut after "eight nine." (4+ words then a sentence end), then after "fourteen fifteen."
            List<Segment> first = segs.stream().filter(s -> s.eventIndex() == 0).toList();
            assertThat(first).hasSize(3);
            assertThat(EVENTS.get(0)
                            .substring(
                                    first.get(0).charStart(),
                                    Math.min(
                                            first.get(0).charEnd(),
                                            EVENTS.get(0).length()))
                            .strip())
                    .isEqualTo("One two three four.");
            assertThat(segs.stream().filter(s -> s.eventIndex() == 1)).hasSize(1);
            // no sentence end: cut at twice the word target
            assertThat(segs.stream().filter(s -> s.eventIndex() == 2).count()).isGreaterThanOrEqualTo(3);
            // words of several tokens: the cut at twice the word target waits for the next word
            assertThat(segs.stream().filter(s -> s.eventIndex() == 3).count()).isGreaterThanOrEqualTo(2);
            assertThat(Segmenter.preamble(mem, 8).length)
                    .isEqualTo((int) segs.get(0).firstSeq());
        }
    }
}
