package io.engram.topology.cli;

import java.io.PrintWriter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Progress of long CLI work: a redrawn bar on a console, periodic log lines otherwise. Only the CLI draws; library
 * code reports through callbacks.
 */
public interface Progress extends AutoCloseable {

    /**
     * @param done units done so far (bytes read)
     * @param total units in all, or -1 when unknown (stdin)
     * @param items items produced so far (events)
     */
    void update(long done, long total, long items);

    /** Ends the bar's line / logs the last state. */
    @Override
    void close();

    /** The progress display for this context: a bar on {@code err} when on a console, else log lines every 2 s. */
    static Progress forContext(CliContext context, String what) {
        return context.console() ? new Bar(context.err(), what) : new LogLines(what, 2_000);
    }

    /** A one-line bar on a terminal, redrawn at most every 100 ms. */
    final class Bar implements Progress {
        private static final int WIDTH = 30;
        private final PrintWriter err;
        private final String what;
        private long lastDraw;
        private long done;
        private long total;
        private long items;

        Bar(PrintWriter err, String what) {
            this.err = err;
            this.what = what;
        }

        @Override
        public void update(long done, long total, long items) {
            this.done = done;
            this.total = total;
            this.items = items;
            long now = System.nanoTime();
            if (now - lastDraw > 100_000_000L) {
                lastDraw = now;
                draw();
            }
        }

        private void draw() {
            if (total > 0) {
                int filled = (int) Math.min(WIDTH, WIDTH * done / total);
                err.printf("\r%s [%s%s] %3d%% %,d B, %,d events", what, "#".repeat(filled), " ".repeat(WIDTH - filled),
                        100 * done / total, done, items);
            } else {
                err.printf("\r%s %,d B, %,d events", what, done, items);
            }
            err.flush();
        }

        @Override
        public void close() {
            draw();
            err.println();
            err.flush();
        }
    }

    /** INFO log lines at most every {@code everyMs}, and one at the end. */
    final class LogLines implements Progress {
        private static final Logger LOG = LoggerFactory.getLogger(Progress.class);
        private final String what;
        private final long everyNanos;
        private long last = System.nanoTime();
        private long done;
        private long total;
        private long items;

        LogLines(String what, long everyMs) {
            this.what = what;
            this.everyNanos = everyMs * 1_000_000L;
        }

        @Override
        public void update(long done, long total, long items) {
            this.done = done;
            this.total = total;
            this.items = items;
            long now = System.nanoTime();
            if (now - last >= everyNanos) {
                last = now;
                log();
            }
        }

        private void log() {
            if (total > 0) {
                LOG.info("{}: {} of {} bytes ({}%), {} events", what, done, total, 100 * done / total, items);
            } else {
                LOG.info("{}: {} bytes, {} events", what, done, items);
            }
        }

        @Override
        public void close() {
            log();
        }
    }
}
