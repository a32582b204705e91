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
        return forContext(context, what, "B", "events");
    }

    /** As {@link #forContext(CliContext, String)}, counting {@code unit} done and {@code itemUnit} produced (null: none). */
    static Progress forContext(CliContext context, String what, String unit, String itemUnit) {
        return context.console()
                ? new Bar(context.err(), what, unit, itemUnit)
                : new LogLines(what, 2_000, unit, itemUnit);
    }

    private static String items(long items, String itemUnit) {
        return itemUnit == null ? "" : ", %,d %s".formatted(items, itemUnit);
    }

    /** A one-line bar on a terminal, redrawn at most every 100 ms. */
    final class Bar implements Progress {
        private static final int WIDTH = 30;
        private final PrintWriter err;
        private final String what;
        private final String unit;
        private final String itemUnit;
        private long lastDraw;
        private long done;
        private long total;
        private long items;

        Bar(PrintWriter err, String what, String unit, String itemUnit) {
            this.err = err;
            this.what = what;
            this.unit = unit;
            this.itemUnit = itemUnit;
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
                err.printf(
                        "\r%s [%s%s] %3d%% %,d %s%s",
                        what,
                        "#".repeat(filled),
                        " ".repeat(WIDTH - filled),
                        100 * done / total,
                        done,
                        unit,
                        Progress.items(items, itemUnit));
            } else {
                err.printf("\r%s %,d %s%s", what, done, unit, Progress.items(items, itemUnit));
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
        private final String unit;
        private final String itemUnit;
        private final long everyNanos;
        private long last = System.nanoTime();
        private long done;
        private long total;
        private long items;

        LogLines(String what, long everyMs, String unit, String itemUnit) {
            this.what = what;
            this.unit = unit;
            this.itemUnit = itemUnit;
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
                LOG.info(
                        "{}: {} of {} {} ({}%){}",
                        what, done, total, unit, 100 * done / total, Progress.items(items, itemUnit));
            } else {
                LOG.info("{}: {} {}{}", what, done, unit, Progress.items(items, itemUnit));
            }
        }

        @Override
        public void close() {
            log();
        }
    }
}
