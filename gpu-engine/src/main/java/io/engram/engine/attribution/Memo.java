package io.engram.engine.attribution;

import java.util.BitSet;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.BooleanSupplier;

/**
 * A {@link TracSearch.Valuation} that remembers every value it computed, keyed by {@link #key subset}, and computes a
 * missing one only while {@code mayCompute} allows; otherwise it throws {@link OutOfBudget}. Since a search is
 * deterministic, running it again over the remembered values continues where it stopped: this is how the precise tier
 * does bounded work per call and resumes after a restart (the stream operator keeps the values in keyed state).
 *
 * <p>Not thread-safe.
 */
public final class Memo implements TracSearch.Valuation {
    private final TracSearch.Valuation inner;
    private final Map<String, Double> known;
    private final Map<String, Double> added = new LinkedHashMap<>();
    private final BooleanSupplier mayCompute;

    /** @param known values computed earlier (copied) */
    public Memo(TracSearch.Valuation inner, Map<String, Double> known, BooleanSupplier mayCompute) {
        this.inner = inner;
        this.known = new HashMap<>(known);
        this.mayCompute = mayCompute;
    }

    /** Thrown when a value is missing and the budget is spent; the search is to be run again later. */
    public static final class OutOfBudget extends RuntimeException {
        private static final long serialVersionUID = 1L;

        OutOfBudget() {
            super("attribution budget of this call spent", null, false, false);
        }
    }

    @Override
    public double value(BitSet kept) {
        String k = key(kept);
        Double v = known.get(k);
        if (v != null) {
            return v;
        }
        if (!mayCompute.getAsBoolean()) {
            throw new OutOfBudget();
        }
        double value = inner.value(kept);
        known.put(k, value);
        added.put(k, value);
        return value;
    }

    /** Values computed by this instance, in the order computed (to persist). */
    public Map<String, Double> added() {
        return java.util.Collections.unmodifiableMap(added);
    }

    /** Runs {@code search} over {@code n} candidates; null when the budget ran out before it finished. */
    public java.util.List<TracSearch.Scored> tryRun(TracSearch search, int n) {
        try {
            return search.run(n, this);
        } catch (OutOfBudget e) {
            return null;
        }
    }

    /** A subset as a stable string: the hex of its bit words (little-endian bytes). */
    public static String key(BitSet s) {
        return HexFormat.of().formatHex(s.toByteArray());
    }
}
