package io.engram.engine.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer.Form;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Reads Hugging Face {@code tokenizer.json} (and optionally {@code tokenizer_config.json}) into an {@link
 * HfTokenizer}. Every component type is checked here, so an unsupported file fails at load with the JSON path and
 * type, never at encode time.
 */
final class TokenizerJson {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final String source;

    private TokenizerJson(String source) {
        this.source = source;
    }

    static HfTokenizer load(Path tokenizerJson, Path tokenizerConfigJson) {
        JsonNode root = read(tokenizerJson);
        JsonNode config = tokenizerConfigJson == null ? null : read(tokenizerConfigJson);
        return new TokenizerJson(tokenizerJson.toString()).build(root, config, tokenizerConfigJson);
    }

    static JsonNode read(Path file) {
        try {
            return JSON.readTree(Files.readString(file));
        } catch (IOException e) {
            throw new TokenizerFormatException(
                    file.toString(),
                    "cannot read as JSON (" + e.getMessage() + "); expected a Hugging Face tokenizer file",
                    e);
        }
    }

    private HfTokenizer build(JsonNode root, JsonNode config, Path configPath) {
        if (root == null || !root.isObject()) {
            throw new TokenizerFormatException(source, "top level is not a JSON object; expected a tokenizer.json");
        }
        JsonNode modelNode = required(root, "model", "model");
        BpeModel model = model(modelNode);
        List<AddedToken> added = addedTokens(root.path("added_tokens"));
        Normalizer normalizer = normalizer(root.get("normalizer"), "normalizer");
        PreTokenizer preTokenizer = preTokenizer(root.get("pre_tokenizer"), "pre_tokenizer");
        Map<String, Integer> ids = new HashMap<>(model.vocab());
        added.forEach(t -> ids.put(t.content(), t.id()));
        PostProcessor post = postProcessor(root.get("post_processor"), "post_processor", ids);
        TokenDecoder decoder = decoder(root.get("decoder"), "decoder");
        Integer bos = null;
        Integer eos = null;
        if (config != null) {
            bos = specialTokenId(config, "bos_token", ids, configPath);
            eos = specialTokenId(config, "eos_token", ids, configPath);
        }
        return new HfTokenizer(source, normalizer, preTokenizer, model, added, post, decoder, bos, eos);
    }

    private static Integer specialTokenId(JsonNode config, String key, Map<String, Integer> ids, Path configPath) {
        JsonNode node = config.get(key);
        if (node == null || node.isNull()) {
            return null;
        }
        String content = node.isTextual() ? node.asText() : node.path("content").asText(null);
        if (content == null) {
            throw new TokenizerFormatException(configPath, key + " is neither a string nor {\"content\": ...}");
        }
        Integer id = ids.get(content);
        if (id == null) {
            throw new TokenizerFormatException(
                    configPath, "%s '%s' is not a token of tokenizer.json".formatted(key, content));
        }
        return id;
    }

    // ---------------------------------------------------------------- model

    private BpeModel model(JsonNode m) {
        String type = m.path("type").asText("BPE");
        if (!type.equals("BPE")) {
            throw new UnsupportedTokenizerException(source, "model", type, "BPE");
        }
        if (m.hasNonNull("dropout") && m.get("dropout").asDouble() != 0.0) {
            throw new UnsupportedTokenizerException(
                    source,
                    "model option",
                    "dropout=" + m.get("dropout"),
                    "dropout null (training-time randomness is not applied at inference)");
        }
        JsonNode vocabNode = required(m, "vocab", "model.vocab");
        Map<String, Integer> vocab = new HashMap<>(vocabNode.size() * 2);
        for (Iterator<Map.Entry<String, JsonNode>> it = vocabNode.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().canConvertToInt() || e.getValue().asInt() < 0) {
                throw new TokenizerFormatException(
                        source, "model.vocab['%s'] is %s, not a token id".formatted(e.getKey(), e.getValue()));
            }
            vocab.put(e.getKey(), e.getValue().asInt());
        }
        JsonNode mergesNode = m.path("merges");
        List<String[]> merges = new ArrayList<>(mergesNode.size());
        for (int i = 0; i < mergesNode.size(); i++) {
            JsonNode entry = mergesNode.get(i);
            String[] pair;
            if (entry.isTextual()) {
                pair = entry.asText().split(" ", -1);
            } else if (entry.isArray() && entry.size() == 2) {
                pair = new String[] {entry.get(0).asText(), entry.get(1).asText()};
            } else {
                pair = null;
            }
            if (pair == null || pair.length != 2) {
                throw new TokenizerFormatException(
                        source, "model.merges[%d] is %s; expected \"a b\" or [\"a\", \"b\"]".formatted(i, entry));
            }
            merges.add(pair);
        }
        return new BpeModel(
                source,
                vocab,
                merges,
                textOrNull(m, "unk_token"),
                m.path("fuse_unk").asBoolean(false),
                m.path("byte_fallback").asBoolean(false),
                m.path("ignore_merges").asBoolean(false),
                textOrNull(m, "continuing_subword_prefix"),
                textOrNull(m, "end_of_word_suffix"));
    }

    private List<AddedToken> addedTokens(JsonNode list) {
        List<AddedToken> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            JsonNode t = list.get(i);
            if (!t.path("id").canConvertToInt() || !t.path("content").isTextual()) {
                throw new TokenizerFormatException(
                        source, "added_tokens[%d] lacks an integer 'id' or a string 'content'".formatted(i));
            }
            out.add(new AddedToken(
                    t.get("id").asInt(),
                    t.get("content").asText(),
                    t.path("lstrip").asBoolean(false),
                    t.path("rstrip").asBoolean(false),
                    t.path("single_word").asBoolean(false),
                    t.path("normalized").asBoolean(true),
                    t.path("special").asBoolean(false)));
        }
        return out;
    }

    // ---------------------------------------------------------------- normalizers

    private Normalizer normalizer(JsonNode n, String path) {
        if (n == null || n.isNull()) {
            return null;
        }
        String type = type(n, path);
        return switch (type) {
            case "NFC" -> new Normalizer.UnicodeForm(Form.NFC);
            case "NFD" -> new Normalizer.UnicodeForm(Form.NFD);
            case "NFKC" -> new Normalizer.UnicodeForm(Form.NFKC);
            case "NFKD" -> new Normalizer.UnicodeForm(Form.NFKD);
            case "Lowercase" -> new Normalizer.Lowercase();
            case "Prepend" -> new Normalizer.Prepend(requiredText(n, "prepend", path));
            case "Replace" -> new Normalizer.Replace(pattern(n, path), requiredText(n, "content", path));
            case "Strip" ->
                new Normalizer.Strip(
                        n.path("strip_left").asBoolean(true),
                        n.path("strip_right").asBoolean(true));
            case "Sequence" -> {
                List<Normalizer> steps = new ArrayList<>();
                JsonNode list = required(n, "normalizers", path + ".normalizers");
                for (int i = 0; i < list.size(); i++) {
                    steps.add(normalizer(list.get(i), path + ".normalizers[" + i + "]"));
                }
                yield new Normalizer.Sequence(steps);
            }
            default ->
                throw new UnsupportedTokenizerException(
                        source, path, type, "NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence");
        };
    }

    // ---------------------------------------------------------------- pre-tokenizers

    private PreTokenizer preTokenizer(JsonNode n, String path) {
        if (n == null || n.isNull()) {
            return null;
        }
        String type = type(n, path);
        return switch (type) {
            case "ByteLevel" ->
                new PreTokenizer.ByteLevel(
                        n.path("add_prefix_space").asBoolean(true),
                        n.path("use_regex").asBoolean(true));
            case "Split" ->
                new PreTokenizer.Split(
                        pattern(n, path),
                        SplitBehavior.fromJson(source, requiredText(n, "behavior", path)),
                        n.path("invert").asBoolean(false));
            case "Digits" -> new PreTokenizer.Digits(n.path("individual_digits").asBoolean(false));
            case "Metaspace" ->
                new PreTokenizer.Metaspace(
                        replacement(n, path),
                        prependScheme(n, path),
                        n.path("split").asBoolean(true));
            case "Sequence" -> {
                List<PreTokenizer> steps = new ArrayList<>();
                JsonNode list = required(n, "pretokenizers", path + ".pretokenizers");
                for (int i = 0; i < list.size(); i++) {
                    steps.add(preTokenizer(list.get(i), path + ".pretokenizers[" + i + "]"));
                }
                yield new PreTokenizer.Sequence(steps);
            }
            default ->
                throw new UnsupportedTokenizerException(
                        source, path, type, "ByteLevel, Split, Digits, Metaspace, Sequence");
        };
    }

    private char replacement(JsonNode n, String path) {
        String r = n.path("replacement").asText("\u2581");
        if (r.length() != 1) {
            throw new TokenizerFormatException(source, path + ".replacement must be one character, got '" + r + "'");
        }
        return r.charAt(0);
    }

    private PreTokenizer.PrependScheme prependScheme(JsonNode n, String path) {
        if (n.hasNonNull("prepend_scheme")) {
            String s = n.get("prepend_scheme").asText();
            return switch (s) {
                case "always" -> PreTokenizer.PrependScheme.ALWAYS;
                case "first" -> PreTokenizer.PrependScheme.FIRST;
                case "never" -> PreTokenizer.PrependScheme.NEVER;
                default ->
                    throw new UnsupportedTokenizerException(
                            source, path + ".prepend_scheme", s, "always, first, never");
            };
        }
        return n.path("add_prefix_space").asBoolean(true)
                ? PreTokenizer.PrependScheme.ALWAYS
                : PreTokenizer.PrependScheme.NEVER;
    }

    // ---------------------------------------------------------------- post-processors

    private PostProcessor postProcessor(JsonNode n, String path, Map<String, Integer> ids) {
        if (n == null || n.isNull()) {
            return null;
        }
        String type = type(n, path);
        return switch (type) {
            case "ByteLevel" -> new PostProcessor.Identity();
            case "TemplateProcessing" -> template(n, path);
            case "BertProcessing", "RobertaProcessing" ->
                new PostProcessor.Template(
                        List.of(new int[] {specialPair(n, "cls", path)}, PostProcessor.Template.SEQUENCE, new int[] {
                            specialPair(n, "sep", path)
                        }));
            case "Sequence" -> {
                List<PostProcessor> steps = new ArrayList<>();
                JsonNode list = required(n, "processors", path + ".processors");
                for (int i = 0; i < list.size(); i++) {
                    steps.add(postProcessor(list.get(i), path + ".processors[" + i + "]", ids));
                }
                yield new PostProcessor.Sequence(steps);
            }
            default ->
                throw new UnsupportedTokenizerException(
                        source,
                        path,
                        type,
                        "TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, Sequence");
        };
    }

    private int specialPair(JsonNode n, String key, String path) {
        JsonNode pair = n.get(key);
        if (pair == null || !pair.isArray() || pair.size() != 2 || !pair.get(1).canConvertToInt()) {
            throw new TokenizerFormatException(source, "%s.%s must be [token, id]".formatted(path, key));
        }
        return pair.get(1).asInt();
    }

    private PostProcessor template(JsonNode n, String path) {
        JsonNode single = required(n, "single", path + ".single");
        JsonNode specials = n.path("special_tokens");
        List<int[]> pieces = new ArrayList<>();
        for (int i = 0; i < single.size(); i++) {
            JsonNode item = single.get(i);
            if (item.has("Sequence")) {
                String seq = item.get("Sequence").path("id").asText();
                if (!seq.equals("A")) {
                    throw new TokenizerFormatException(
                            source,
                            "%s.single[%d] refers to sequence '%s'; a single template can only use A"
                                    .formatted(path, i, seq));
                }
                pieces.add(PostProcessor.Template.SEQUENCE);
            } else if (item.has("SpecialToken")) {
                String name = item.get("SpecialToken").path("id").asText();
                JsonNode spec = specials.get(name);
                if (spec == null || !spec.path("ids").isArray()) {
                    throw new TokenizerFormatException(
                            source,
                            "%s.single[%d] uses special token '%s', missing from %s.special_tokens"
                                    .formatted(path, i, name, path));
                }
                int[] run = new int[spec.get("ids").size()];
                for (int k = 0; k < run.length; k++) {
                    run[k] = spec.get("ids").get(k).asInt();
                }
                pieces.add(run);
            } else {
                throw new TokenizerFormatException(
                        source, "%s.single[%d] is %s; expected Sequence or SpecialToken".formatted(path, i, item));
            }
        }
        return new PostProcessor.Template(pieces);
    }

    // ---------------------------------------------------------------- decoders

    private TokenDecoder decoder(JsonNode n, String path) {
        if (n == null || n.isNull()) {
            return null;
        }
        String type = type(n, path);
        return switch (type) {
            case "ByteLevel" -> new TokenDecoder.ByteLevel();
            case "Replace" -> new TokenDecoder.Replace(pattern(n, path), requiredText(n, "content", path));
            case "ByteFallback" -> new TokenDecoder.ByteFallback();
            case "Fuse" -> new TokenDecoder.Fuse();
            case "Strip" -> {
                String content = requiredText(n, "content", path);
                if (content.codePointCount(0, content.length()) != 1) {
                    throw new TokenizerFormatException(source, path + ".content must be one character");
                }
                yield new TokenDecoder.Strip(
                        content.codePointAt(0),
                        n.path("start").asInt(0),
                        n.path("stop").asInt(0));
            }
            case "Metaspace" -> new TokenDecoder.Metaspace(replacement(n, path), prependScheme(n, path));
            case "Sequence" -> {
                List<TokenDecoder> steps = new ArrayList<>();
                JsonNode list = required(n, "decoders", path + ".decoders");
                for (int i = 0; i < list.size(); i++) {
                    steps.add(decoder(list.get(i), path + ".decoders[" + i + "]"));
                }
                yield new TokenDecoder.Sequence(steps);
            }
            default ->
                throw new UnsupportedTokenizerException(
                        source, path, type, "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence");
        };
    }

    // ---------------------------------------------------------------- helpers

    private Pattern pattern(JsonNode n, String path) {
        JsonNode p = required(n, "pattern", path + ".pattern");
        if (p.hasNonNull("String")) {
            return HfRegex.literal(p.get("String").asText());
        }
        if (p.hasNonNull("Regex")) {
            try {
                return HfRegex.compile(p.get("Regex").asText());
            } catch (IllegalArgumentException e) {
                throw new TokenizerFormatException(source, path + ".pattern: " + e.getMessage(), e);
            }
        }
        throw new TokenizerFormatException(
                source, path + ".pattern is " + p + "; expected {\"String\": ...} or {\"Regex\": ...}");
    }

    private String type(JsonNode n, String path) {
        if (!n.path("type").isTextual()) {
            throw new TokenizerFormatException(source, path + " has no string 'type' field: " + abbreviate(n));
        }
        return n.get("type").asText();
    }

    private JsonNode required(JsonNode n, String field, String path) {
        JsonNode v = n.get(field);
        if (v == null || v.isNull()) {
            throw new TokenizerFormatException(
                    source, "missing '" + path + "'; is this a Hugging Face tokenizer.json?");
        }
        return v;
    }

    private String requiredText(JsonNode n, String field, String path) {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual()) {
            throw new TokenizerFormatException(source, path + "." + field + " must be a string");
        }
        return v.asText();
    }

    private static String textOrNull(JsonNode n, String field) {
        JsonNode v = n.get(field);
        return v == null || v.isNull() ? null : v.asText();
    }

    private static String abbreviate(JsonNode n) {
        String s = n.toString();
        return s.length() > 120 ? s.substring(0, 120) + "..." : s;
    }
}
