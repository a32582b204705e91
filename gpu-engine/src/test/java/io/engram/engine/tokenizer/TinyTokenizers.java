package io.engram.engine.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Small {@code tokenizer.json} files built in tests, so tokenizer tests need nothing from {@code shared/}. */
final class TinyTokenizers {

    static final ObjectMapper JSON = new ObjectMapper();

    private TinyTokenizers() {}

    /**
     * SentencePiece-style BPE: {@code <unk>}=0, {@code <s>}=1, {@code </s>}=2, {@code <0x00>..<0xFF>}=3..258, then
     * {@code ▁}=259, {@code a}=260, {@code b}=261, {@code ▁a}=262, {@code ab}=263, {@code ▁ab}=264, {@code c}=265;
     * merges {@code ▁ a}, {@code a b}, {@code ▁a b}. Llama-2 normalizer, post-processor and decoder.
     */
    static ObjectNode spm(boolean byteFallback, boolean fuseUnk) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE")
                .put("unk_token", "<unk>")
                .put("fuse_unk", fuseUnk)
                .put("byte_fallback", byteFallback);
        ObjectNode vocab = model.putObject("vocab");
        vocab.put("<unk>", 0).put("<s>", 1).put("</s>", 2);
        for (int b = 0; b < 256; b++) {
            vocab.put("<0x%02X>".formatted(b), 3 + b);
        }
        String[] pieces = {"▁", "a", "b", "▁a", "ab", "▁ab", "c"};
        for (int i = 0; i < pieces.length; i++) {
            vocab.put(pieces[i], 259 + i);
        }
        ArrayNode merges = model.putArray("merges");
        // the newer [a, b] pair form (the byte-level tokenizer below uses legacy "a b" strings)
        merges.addArray().add("▁").add("a");
        merges.addArray().add("a").add("b");
        merges.addArray().add("▁a").add("b");
        ArrayNode added = root.putArray("added_tokens");
        added.add(added(0, "<unk>", true)).add(added(1, "<s>", true)).add(added(2, "</s>", true));
        root.set("normalizer", parse("""
                {"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},
                 {"type":"Replace","pattern":{"String":" "},"content":"▁"}]}"""));
        root.putNull("pre_tokenizer");
        root.set("post_processor", parse("""
                {"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},
                 {"Sequence":{"id":"A","type_id":0}}],"pair":[],"special_tokens":{"<s>":{"id":"<s>","ids":[1],"tokens":["<s>"]}}}"""));
        root.set("decoder", parse("""
                {"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},
                 {"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}"""));
        return root;
    }

    /**
     * Byte-level BPE: the 256 GPT-2 alphabet characters as ids 0..255 in byte order, then {@code Ġt}=256, {@code
     * he}=257, {@code Ġthe}=258, {@code <|end|>}=259 (special added token); merges {@code Ġ t}, {@code h e}, {@code
     * Ġt he}. ByteLevel pre-tokenizer (GPT-2 regex) and decoder.
     */
    static ObjectNode byteLevel() {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE").putNull("unk_token");
        ObjectNode vocab = model.putObject("vocab");
        for (int b = 0; b < 256; b++) {
            vocab.put(String.valueOf(ByteLevelAlphabet.charOf(b)), b);
        }
        vocab.put("Ġt", 256).put("he", 257).put("Ġthe", 258);
        model.putArray("merges").add("Ġ t").add("h e").add("Ġt he");
        root.putArray("added_tokens").add(added(259, "<|end|>", true));
        root.set("pre_tokenizer", parse("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}"));
        root.set("decoder", parse("{\"type\":\"ByteLevel\"}"));
        return root;
    }

    static ObjectNode added(int id, String content, boolean special) {
        ObjectNode t = JSON.createObjectNode();
        t.put("id", id)
                .put("content", content)
                .put("single_word", false)
                .put("lstrip", false)
                .put("rstrip", false)
                .put("normalized", false)
                .put("special", special);
        return t;
    }

    static com.fasterxml.jackson.databind.JsonNode parse(String json) {
        try {
            return JSON.readTree(json);
        } catch (IOException e) {
            throw new IllegalArgumentException(json, e);
        }
    }

    static Path write(Path dir, String name, ObjectNode root) throws IOException {
        Path file = dir.resolve(name);
        Files.writeString(file, JSON.writeValueAsString(root));
        return file;
    }

    static List<String> texts() {
        return List.of("", "a", "ab ab", "abc", "é", "cc", "a  b", " lead", "<s>x</s>");
    }
}
