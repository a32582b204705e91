package io.engram.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Hand-computed expectations on tiny tokenizers built in the test, and load-time errors. Needs no shared files. */
class TokenizerUnitTest {

    @TempDir
    Path tmp;

    HfTokenizer load(ObjectNode root) throws IOException {
        return HfTokenizer.load(TinyTokenizers.write(tmp, "tokenizer.json", root), null);
    }

    @Test
    void sentencePieceMergesByRankAndFallsBackToBytes() throws IOException {
        HfTokenizer t = load(TinyTokenizers.spm(true, true));
        // "▁ab▁ab": (▁,a) rank 0 twice, then (▁a,b) rank 2; (a,b) rank 1 entries are stale by then
        assertThat(t.encode("ab ab", false)).containsExactly(264, 264);
        assertThat(t.encode("ab ab", true)).containsExactly(1, 264, 264);
        // "▁ba": no merge applies to (▁,b) or (b,a)
        assertThat(t.encode("ba", false)).containsExactly(259, 261, 260);
        // é is not a piece: its UTF-8 bytes C3 A9 become <0xC3>=3+0xC3, <0xA9>=3+0xA9
        assertThat(t.encode("é", false)).containsExactly(259, 3 + 0xC3, 3 + 0xA9);
        assertThat(t.decode(new int[] {259, 3 + 0xC3, 3 + 0xA9}, false)).isEqualTo("é");
        // a lone continuation byte decodes to U+FFFD, one per invalid byte
        assertThat(t.decode(new int[] {262, 3 + 0xA9}, false)).isEqualTo("a\uFFFD");
        // empty text: no dummy prefix, nothing to encode; the template still adds BOS
        assertThat(t.encode("", false)).isEmpty();
        assertThat(t.encode("", true)).containsExactly(1);
        // special tokens in text are matched first; each text segment gets its own dummy prefix
        assertThat(t.encode("<s>ab", false)).containsExactly(1, 264);
        assertThat(t.decode(new int[] {1, 264}, false)).isEqualTo("<s> ab");
        assertThat(t.decode(new int[] {1, 264}, true)).isEqualTo("ab");
        assertThat(t.tokenText(264)).isEqualTo(" ab");
        assertThat(t.tokenId("▁ab")).hasValue(264);
        assertThat(t.tokenId("nope")).isEmpty();
        assertThat(t.isSpecial(1)).isTrue();
        assertThat(t.isSpecial(264)).isFalse();
        assertThat(t.vocabSize()).isEqualTo(266);
    }

    @Test
    void unknownCharactersUseUnkFusedOrNot() throws IOException {
        // 'd' is not in the vocab; without byte fallback it becomes <unk>, fused per run when fuse_unk is set
        assertThat(load(TinyTokenizers.spm(false, true)).encode("dd", false)).containsExactly(259, 0);
        assertThat(load(TinyTokenizers.spm(false, false)).encode("dd", false)).containsExactly(259, 0, 0);
        assertThat(load(TinyTokenizers.spm(false, true)).encode("dacd", false)).containsExactly(259, 0, 260, 265, 0);
    }

    @Test
    void byteLevelMergesPerPreTokenAndRoundTrips() throws IOException {
        HfTokenizer t = load(TinyTokenizers.byteLevel());
        // GPT-2 regex: "the", " the", "!" ; ' ' is byte 0x20 → 'Ġ' (id 0x20 = 32 in this vocab)
        assertThat(t.encode("the the!", false)).containsExactly('t', 257, 258, '!');
        // "é" is bytes C3 A9, whose alphabet chars have ids 0xC3 and 0xA9
        assertThat(t.encode("é", false)).containsExactly(0xC3, 0xA9);
        assertThat(t.decode(new int[] {0xC3, 0xA9}, false)).isEqualTo("é");
        assertThat(t.decode(new int[] {0xC3}, false)).isEqualTo("\uFFFD");
        assertThat(t.encode("x<|end|>the", false)).containsExactly('x', 259, 't', 257);
        assertThat(t.decode(new int[] {'x', 259, 258}, true)).isEqualTo("x the");
        assertThat(t.decode(new int[] {'x', 259, 258}, false)).isEqualTo("x<|end|> the");
        assertThat(t.tokenText(258)).isEqualTo(" the");
        assertThat(t.encode("the", true)).containsExactly('t', 257); // no post-processor
    }

    @Test
    void malformedFilesFailWithFileAndReason() throws IOException {
        Path notJson = tmp.resolve("broken.json");
        Files.writeString(notJson, "{ \"model\": ");
        assertThatThrownBy(() -> HfTokenizer.load(notJson, null))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining(notJson.toString())
                .hasMessageContaining("cannot read as JSON");

        ObjectNode noModel = TinyTokenizers.byteLevel();
        noModel.remove("model");
        assertThatThrownBy(() -> load(noModel))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("missing 'model'");

        ObjectNode unigram = TinyTokenizers.byteLevel();
        ((ObjectNode) unigram.get("model")).put("type", "Unigram");
        assertThatThrownBy(() -> load(unigram))
                .isInstanceOf(UnsupportedTokenizerException.class)
                .hasMessageContaining("unsupported model type 'Unigram'")
                .hasMessageContaining("supported: BPE");

        ObjectNode bert = TinyTokenizers.byteLevel();
        bert.set("pre_tokenizer", TinyTokenizers.parse("{\"type\":\"BertPreTokenizer\"}"));
        assertThatThrownBy(() -> load(bert))
                .isInstanceOf(UnsupportedTokenizerException.class)
                .hasMessageContaining("pre_tokenizer")
                .hasMessageContaining("'BertPreTokenizer'")
                .satisfies(e -> assertThat(((UnsupportedTokenizerException) e).componentType())
                        .isEqualTo("BertPreTokenizer"));

        ObjectNode wordPiece = TinyTokenizers.spm(true, true);
        ((ObjectNode) wordPiece.get("decoder").get("decoders").get(1)).put("type", "WordPiece");
        assertThatThrownBy(() -> load(wordPiece))
                .isInstanceOf(UnsupportedTokenizerException.class)
                .hasMessageContaining("decoder.decoders[1]")
                .hasMessageContaining("'WordPiece'");

        ObjectNode badMerge = TinyTokenizers.byteLevel();
        ((com.fasterxml.jackson.databind.node.ArrayNode) badMerge.get("model").get("merges")).add("Ġthe x y");
        assertThatThrownBy(() -> load(badMerge))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("model.merges[3]");

        ObjectNode mergeOutsideVocab = TinyTokenizers.byteLevel();
        ((com.fasterxml.jackson.databind.node.ArrayNode)
                        mergeOutsideVocab.get("model").get("merges"))
                .add("t h");
        assertThatThrownBy(() -> load(mergeOutsideVocab))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("produces 'th', which is not in model.vocab");

        ObjectNode badUnk = TinyTokenizers.spm(true, true);
        ((ObjectNode) badUnk.get("model")).put("unk_token", "<missing>");
        assertThatThrownBy(() -> load(badUnk))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("unk_token '<missing>' is not in model.vocab");

        ObjectNode badRegex = TinyTokenizers.byteLevel();
        badRegex.set(
                "pre_tokenizer",
                TinyTokenizers.parse(
                        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\h+\"},\"behavior\":\"Isolated\",\"invert\":false}"));
        assertThatThrownBy(() -> load(badRegex))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("pre_tokenizer.pattern")
                .hasMessageContaining("\\h");

        Path config = tmp.resolve("tokenizer_config.json");
        Files.writeString(config, "{\"bos_token\": \"<nope>\"}");
        Path json = TinyTokenizers.write(tmp, "tokenizer.json", TinyTokenizers.byteLevel());
        assertThatThrownBy(() -> HfTokenizer.load(json, config))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("bos_token '<nope>' is not a token");
        assertThatThrownBy(() -> Tokenizers.fromHuggingFace(tmp.resolve("absent")))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("tokenizer.json")
                .hasMessageContaining("not found");
    }

    @Test
    void decodeRejectsIdsOutsideTheVocabulary() throws IOException {
        HfTokenizer t = load(TinyTokenizers.byteLevel());
        assertThatThrownBy(() -> t.decode(new int[] {1, 260}, false))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("token id 260");
        assertThatThrownBy(() -> t.tokenText(-1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void bosAndEosComeFromTokenizerConfig() throws IOException {
        Path json = TinyTokenizers.write(tmp, "tokenizer.json", TinyTokenizers.spm(true, true));
        Path config = tmp.resolve("tokenizer_config.json");
        Files.writeString(config, "{\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\"}}");
        HfTokenizer t = HfTokenizer.load(json, config);
        assertThat(t.bosId()).hasValue(1);
        assertThat(t.eosId()).hasValue(2);
        assertThat(HfTokenizer.load(json, null).bosId()).isEmpty();
    }
}
