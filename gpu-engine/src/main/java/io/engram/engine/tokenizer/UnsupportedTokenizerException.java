package io.engram.engine.tokenizer;

/**
 * A well-formed tokenizer uses a component we do not implement (a model, normalizer, pre-tokenizer, decoder or
 * post-processor type, or a GGUF pre-tokenizer name). Thrown at load, never at encode time, so an unsupported file
 * is never tokenized approximately.
 */
public final class UnsupportedTokenizerException extends TokenizerFormatException {

    private final String componentType;

    /**
     * @param source the file or vocabulary
     * @param component which slot, e.g. {@code "pre_tokenizer"}
     * @param componentType the JSON {@code type} value (or GGUF name) found
     * @param supported the types we support in that slot
     */
    public UnsupportedTokenizerException(String source, String component, String componentType, String supported) {
        super(source, "unsupported %s type '%s'; supported: %s".formatted(component, componentType, supported));
        this.componentType = componentType;
    }

    /** The unsupported type name as found in the file. */
    public String componentType() {
        return componentType;
    }
}
