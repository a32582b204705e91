package io.engram.engine.session;

/**
 * How source content and questions are laid out as model input. The plain format suits base models and our own
 * model's QA training format; chat models use their template.
 */
public interface PromptFormat {
    /** Text to ingest for one content event. */
    String content(String text, boolean first);

    /** Text that asks {@code question} after the memory, ending where the answer starts. */
    String question(String question, boolean memoryEmpty);

    /** Content events separated by blank lines; "Question: ...\nAnswer:" for queries. */
    PromptFormat PLAIN = new PromptFormat() {
        @Override
        public String content(String text, boolean first) {
            return first ? text : "\n\n" + text;
        }

        @Override
        public String question(String question, boolean memoryEmpty) {
            return (memoryEmpty ? "" : "\n\n") + "Question: " + question + "\nAnswer:";
        }
    };

    /**
     * Content events separated by blank lines, and the "question" is text the answer continues after a blank line: for
     * base models asked to complete a passage (the attribution ground truth continues a planted phrase).
     */
    PromptFormat CONTINUATION = new PromptFormat() {
        @Override
        public String content(String text, boolean first) {
            return first ? text : "\n\n" + text;
        }

        @Override
        public String question(String question, boolean memoryEmpty) {
            return (memoryEmpty ? "" : "\n\n") + question;
        }
    };
}
