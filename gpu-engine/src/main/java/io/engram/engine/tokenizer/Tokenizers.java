package io.engram.engine.tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Entry points that build a {@link Tokenizer} from a model's files. */
public final class Tokenizers {

    private static final String LLAMA3_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
                    + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    private static final String QWEN2_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private Tokenizers() {}

    /**
     * Loads {@code tokenizer.json} and, when present, {@code tokenizer_config.json} from a Hugging Face model folder.
     *
     * @throws TokenizerFormatException if {@code tokenizer.json} is missing or malformed
     * @throws UnsupportedTokenizerException if it uses a component we do not implement
     */
    public static HfTokenizer fromHuggingFace(Path modelDir) {
        Path json = modelDir.resolve("tokenizer.json");
        if (!Files.isRegularFile(json)) {
            throw new TokenizerFormatException(
                    json,
                    "not found; a Hugging Face model folder needs tokenizer.json "
                            + "(slow-tokenizer files such as tokenizer.model are not supported)");
        }
        Path config = modelDir.resolve("tokenizer_config.json");
        return HfTokenizer.load(json, Files.isRegularFile(config) ? config : null);
    }

    /**
     * Builds the tokenizer of a GGUF file from its {@code tokenizer.ggml.*} metadata: {@code "llama"} gives
     * llama.cpp's score-based SentencePiece BPE, {@code "gpt2"} a byte-level BPE with the pre-tokenizer named by
     * {@code pre} ({@code llama-bpe}/{@code llama3}, {@code qwen2}, {@code smollm}, {@code gpt2}). Control and
     * user-defined tokens are matched in the text; control (and unknown) tokens are special.
     *
     * @throws UnsupportedTokenizerException for another model or pre-tokenizer name
     * @throws TokenizerFormatException if the metadata is inconsistent
     */
    public static Tokenizer fromGguf(GgufVocab vocab) {
        return switch (vocab.model()) {
            case "llama" -> new SpmTokenizer(vocab);
            case "gpt2" -> byteLevelFromGguf(vocab);
            default ->
                throw new UnsupportedTokenizerException(
                        GgufVocab.SOURCE, "tokenizer.ggml.model", vocab.model(), "llama, gpt2");
        };
    }

    private static HfTokenizer byteLevelFromGguf(GgufVocab vocab) {
        String source = GgufVocab.SOURCE;
        String pre = vocab.pre() == null ? "default" : vocab.pre();
        PreTokenizer byteLevel = new PreTokenizer.ByteLevel(false, false);
        boolean ignoreMerges = false;
        PreTokenizer preTokenizer = switch (pre) {
            case "llama-bpe", "llama3", "llama-v3", "smaug-bpe", "dbrx" -> {
                ignoreMerges = true; // llama.cpp sets tokenizer_ignore_merges for the Llama-3 family
                yield split(LLAMA3_PATTERN, byteLevel);
            }
            case "qwen2", "deepseek-r1-qwen" -> split(QWEN2_PATTERN, byteLevel);
            case "smollm" ->
                new PreTokenizer.Sequence(
                        List.of(new PreTokenizer.Digits(true), new PreTokenizer.ByteLevel(false, true)));
            case "gpt2", "gpt-2" -> new PreTokenizer.ByteLevel(false, true);
            default ->
                throw new UnsupportedTokenizerException(
                        source,
                        "tokenizer.ggml.pre",
                        pre,
                        "llama-bpe, llama3, llama-v3, smaug-bpe, dbrx, qwen2, deepseek-r1-qwen, smollm, gpt2");
        };
        Map<String, Integer> ids = new HashMap<>(vocab.tokens().size() * 2);
        List<AddedToken> added = new ArrayList<>();
        for (int i = 0; i < vocab.tokens().size(); i++) {
            String t = vocab.tokens().get(i);
            int type = vocab.typeOf(i);
            if (type == GgufVocab.TYPE_CONTROL || type == GgufVocab.TYPE_USER_DEFINED) {
                added.add(new AddedToken(i, t, false, false, false, false, type == GgufVocab.TYPE_CONTROL));
            }
            ids.put(t, i);
        }
        List<String[]> merges = new ArrayList<>(vocab.merges().size());
        for (int i = 0; i < vocab.merges().size(); i++) {
            String[] pair = vocab.merges().get(i).split(" ", -1);
            if (pair.length != 2) {
                throw new TokenizerFormatException(
                        source,
                        "tokenizer.ggml.merges[%d] '%s' is not two pieces separated by one space"
                                .formatted(i, vocab.merges().get(i)));
            }
            merges.add(pair);
        }
        BpeModel model = new BpeModel(source, ids, merges, null, false, false, ignoreMerges, null, null);
        List<int[]> template = new ArrayList<>();
        if (vocab.addBos()) {
            template.add(new int[] {vocab.bosId()});
        }
        template.add(PostProcessor.Template.SEQUENCE);
        if (vocab.addEos()) {
            template.add(new int[] {vocab.eosId()});
        }
        return new HfTokenizer(
                source,
                null,
                preTokenizer,
                model,
                added,
                new PostProcessor.Template(template),
                new TokenDecoder.ByteLevel(),
                vocab.bosId(),
                vocab.eosId());
    }

    private static PreTokenizer split(String pattern, PreTokenizer byteLevel) {
        return new PreTokenizer.Sequence(
                List.of(new PreTokenizer.Split(HfRegex.compile(pattern), SplitBehavior.ISOLATED, false), byteLevel));
    }
}
