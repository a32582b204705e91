package io.engram.topology;

import io.engram.topology.options.ResolvedOptions;

/**
 * Creates the {@link SessionStage} for a run from the resolved options (model path, engine settings...). The CLI's
 * {@code run} takes one; {@code EngramCli.main} passes the production factory.
 */
@FunctionalInterface
public interface SessionStageFactory {

    /**
     * @throws StageUnavailableException when no stage can be built (e.g. no model); the CLI maps it to exit code 3
     */
    SessionStage create(ResolvedOptions options);

    /** Until the session memory operator lands: refuses with a message saying so. */
    static SessionStageFactory none() {
        return options -> {
            throw new StageUnavailableException("no session stage is wired into this build yet: the session memory "
                    + "operator (module operators) plugs in through EngramCli.main's SessionStageFactory");
        };
    }

    /** No session stage can be created in this setting. */
    final class StageUnavailableException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        public StageUnavailableException(String message) {
            super(message);
        }
    }
}
