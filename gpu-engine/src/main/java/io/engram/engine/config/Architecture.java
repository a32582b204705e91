package io.engram.engine.config;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The model families the engine runs. They share one forward pass and differ only by the flags here.
 */
public enum Architecture {
    /** LlamaForCausalLM (Llama 1-3, TinyLlama, SmolLM, stories260K). */
    LLAMA("LlamaForCausalLM", "llama", false),
    /** Qwen2ForCausalLM: biases on the q/k/v projections. */
    QWEN2("Qwen2ForCausalLM", "qwen2", true),
    /** MistralForCausalLM (sliding window ignored: our memory policies bound the attended context). */
    MISTRAL("MistralForCausalLM", "mistral", false);

    private final String hfClass;
    private final String ggufName;
    private final boolean qkvBias;

    Architecture(String hfClass, String ggufName, boolean qkvBias) {
        this.hfClass = hfClass;
        this.ggufName = ggufName;
        this.qkvBias = qkvBias;
    }

    public String hfClass() {
        return hfClass;
    }

    public String ggufName() {
        return ggufName;
    }

    /** Whether q, k and v projections carry biases by default (Qwen2). */
    public boolean qkvBias() {
        return qkvBias;
    }

    public static Architecture fromHfClass(String name, Path file) {
        for (Architecture a : values()) {
            if (a.hfClass.equals(name)) {
                return a;
            }
        }
        throw new ModelFormatException(
                file, "unsupported architecture '%s'; supported: %s".formatted(name, supported()));
    }

    public static Architecture fromGguf(String name, Path file) {
        for (Architecture a : values()) {
            if (a.ggufName.equals(name)) {
                return a;
            }
        }
        throw new ModelFormatException(
                file,
                "unsupported general.architecture '%s'; supported: %s"
                        .formatted(
                                name,
                                Arrays.stream(values())
                                        .map(Architecture::ggufName)
                                        .collect(Collectors.joining(", "))));
    }

    static String supported() {
        return Arrays.stream(values()).map(Architecture::hfClass).collect(Collectors.joining(", "));
    }
}
