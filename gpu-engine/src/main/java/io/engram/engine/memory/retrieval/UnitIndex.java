package io.engram.engine.memory.retrieval;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * An inverted-file index over the units' representative keys, one per layer, so that ranking units for a query costs
 * about the square root of their number instead of a scan of all of them (a million-token stream holds ~8K units).
 *
 * <p>Below {@link #CLUSTER_FROM} units every ranking is an exact scan. From there on the units of each layer are
 * clustered by k-means into about {@code sqrt(units)} lists; the clustering is redone (from a strided sample, a fixed
 * number of rounds) whenever the unit count doubles, and a unit formed in between joins the list whose centroid is
 * nearest. A query ranks the lists by the inner product of their centroid with the query, scores the members of the
 * first {@code probes} lists (fewer when those hold more units than {@code probes} lists of the mean size: on repetitive
 * text a few lists gather most units) and draws units from those in score order, opening the next list only when none
 * is left.
 * The ranking is approximate: {@link RetrievalMemory} measures its recall against exact scans now and then, and bench
 * memory prints it. (Ordering lists by an upper bound, centroid score plus query norm times list radius, would make it
 * exact but opens nearly every list on attention keys: the radii are close to the spread of all keys.)
 *
 * <p>Everything is a function of the units and their list assignments: {@link #restore} rebuilds the same index from
 * the assignments a session stored, in one pass and without clustering again.
 */
public final class UnitIndex {

    /** Units below which rankings scan every unit. */
    public static final int CLUSTER_FROM = 512;

    private static final int KMEANS_ROUNDS = 6;

    private final int layers;
    private final int dim;
    private final int probes;
    private final List<float[][]> reprs = new ArrayList<>();
    private List<List<Cluster>> lists = List.of(); // per layer; empty while not clustered
    private int[][] assign = new int[0][]; // per layer, per unit: its list
    private int clusteredAt;
    private boolean reassigned;

    /**
     * One list of a layer: its members and a copy of their representatives side by side ({@code vectors}, member m at
     * {@code m * dim}), so that scoring a list reads one array front to back instead of one object per unit.
     */
    private static final class Cluster {
        final double[] sum;
        final float[] centroid;
        int[] members = new int[8];
        float[] vectors;
        int size;

        Cluster(int dim) {
            sum = new double[dim];
            centroid = new float[dim];
            vectors = new float[members.length * dim];
        }

        void add(int unit, float[] x) {
            if (size == members.length) {
                members = Arrays.copyOf(members, size * 2);
                vectors = Arrays.copyOf(vectors, members.length * x.length);
            }
            System.arraycopy(x, 0, vectors, size * x.length, x.length);
            members[size++] = unit;
            for (int j = 0; j < x.length; j++) {
                sum[j] += x[j];
            }
        }
    }

    /** @param probes lists a query opens before it draws units (more when they run out); at least 1 */
    public UnitIndex(int layers, int dim, int probes) {
        this.layers = layers;
        this.dim = dim;
        this.probes = Math.max(1, probes);
    }

    public int size() {
        return reprs.size();
    }

    public boolean clustered() {
        return !lists.isEmpty();
    }

    /** Lists per layer (0 while not clustered). */
    public int listCount() {
        return lists.isEmpty() ? 0 : lists.getFirst().size();
    }

    /** Appends the next unit (its per-layer representative keys). */
    public void add(float[][] repr) {
        int unit = reprs.size();
        reprs.add(repr);
        if (clustered() && unit + 1 >= 2 * clusteredAt) {
            cluster();
            return;
        }
        if (!clustered()) {
            if (unit + 1 >= CLUSTER_FROM) {
                cluster();
            }
            return;
        }
        for (int l = 0; l < layers; l++) {
            if (assign[l].length <= unit) {
                assign[l] = Arrays.copyOf(assign[l], Math.max(16, assign[l].length * 2));
            }
            int best = nearest(lists.get(l), repr[l]);
            assign[l][unit] = best;
            Cluster c = lists.get(l).get(best);
            c.add(unit, repr[l]);
            refresh(c);
        }
    }

    /**
     * Whether the list assignment of units already formed changed (a re-clustering) since the last call: a session's
     * stored units then need their assignments written again.
     */
    public boolean takeReassigned() {
        boolean r = reassigned;
        reassigned = false;
        return r;
    }

    /** Per layer, the list of {@code unit}; null while not clustered. */
    public int[] lists(int unit) {
        if (!clustered()) {
            return null;
        }
        int[] out = new int[layers];
        for (int l = 0; l < layers; l++) {
            out[l] = assign[l][unit];
        }
        return out;
    }

    /**
     * Rebuilds the index over {@code units} (in order). With every unit's stored assignment (as {@link #lists} gave it)
     * the lists are rebuilt in one pass; otherwise (assignments missing, or from another clustering schedule) by
     * clustering.
     */
    public void restore(List<float[][]> units, List<int[]> stored) {
        reprs.clear();
        reprs.addAll(units);
        lists = List.of();
        assign = new int[0][];
        clusteredAt = 0;
        if (units.size() < CLUSTER_FROM) {
            return;
        }
        int at = scheduledClustering(units.size());
        int k = listsFor(at);
        boolean usable = stored != null && stored.size() == units.size();
        for (int i = 0; usable && i < units.size(); i++) {
            int[] a = stored.get(i);
            usable = a != null && a.length == layers && Arrays.stream(a).allMatch(x -> x >= 0 && x < k);
        }
        if (!usable) {
            cluster();
            return;
        }
        clusteredAt = at;
        lists = new ArrayList<>();
        assign = new int[layers][];
        for (int l = 0; l < layers; l++) {
            List<Cluster> cs = new ArrayList<>();
            for (int c = 0; c < k; c++) {
                cs.add(new Cluster(dim));
            }
            assign[l] = new int[Math.max(16, units.size())];
            for (int i = 0; i < units.size(); i++) {
                assign[l][i] = stored.get(i)[l];
                cs.get(assign[l][i]).add(i, units.get(i)[l]);
            }
            lists.add(cs);
            for (Cluster c : cs) {
                refresh(c);
            }
        }
    }

    /** The unit count at which the clustering in force for {@code n} units was made. */
    static int scheduledClustering(int n) {
        int at = CLUSTER_FROM;
        while (at * 2 <= n) {
            at *= 2;
        }
        return at;
    }

    private static int listsFor(int n) {
        return Math.max(1, (int) Math.ceil(Math.sqrt(n)));
    }

    /** k-means per layer over all units, seeded by a strided sample (deterministic), a fixed number of rounds. */
    private void cluster() {
        int n = reprs.size();
        clusteredAt = scheduledClustering(n);
        int k = listsFor(clusteredAt);
        lists = new ArrayList<>();
        assign = new int[layers][];
        for (int l = 0; l < layers; l++) {
            float[][] centroids = new float[k][];
            for (int c = 0; c < k; c++) {
                centroids[c] = reprs.get((int) ((long) c * n / k))[l].clone();
            }
            int[] a = new int[Math.max(16, n)];
            List<Cluster> cs = null;
            for (int round = 0; round < KMEANS_ROUNDS; round++) {
                cs = new ArrayList<>();
                for (int c = 0; c < k; c++) {
                    cs.add(new Cluster(dim));
                }
                for (int i = 0; i < n; i++) {
                    a[i] = nearest(centroids, reprs.get(i)[l]);
                    cs.get(a[i]).add(i, reprs.get(i)[l]);
                }
                for (int c = 0; c < k; c++) {
                    Cluster cl = cs.get(c);
                    if (cl.size > 0) {
                        for (int j = 0; j < dim; j++) {
                            centroids[c][j] = (float) (cl.sum[j] / cl.size);
                        }
                    }
                }
            }
            assign[l] = a;
            lists.add(cs);
            for (Cluster c : cs) {
                refresh(c);
            }
        }
        reassigned = true;
    }

    /** Centroid = mean of the members (an empty list keeps a zero centroid and is never nearest). */
    private void refresh(Cluster c) {
        if (c.size == 0) {
            return;
        }
        for (int j = 0; j < dim; j++) {
            c.centroid[j] = (float) (c.sum[j] / c.size);
        }
    }

    private static int nearest(List<Cluster> cs, float[] x) {
        int best = 0;
        double bestD = Double.POSITIVE_INFINITY;
        for (int c = 0; c < cs.size(); c++) {
            if (cs.get(c).size == 0) {
                continue;
            }
            double d = dist2(x, cs.get(c).centroid);
            if (d < bestD) {
                bestD = d;
                best = c;
            }
        }
        return best;
    }

    private static int nearest(float[][] centroids, float[] x) {
        int best = 0;
        double bestD = Double.POSITIVE_INFINITY;
        for (int c = 0; c < centroids.length; c++) {
            double d = dist2(x, centroids[c]);
            if (d < bestD) {
                bestD = d;
                best = c;
            }
        }
        return best;
    }

    private static double dist2(float[] a, float[] b) {
        double s = 0;
        for (int j = 0; j < a.length; j++) {
            double d = a[j] - b[j];
            s += d * d;
        }
        return s;
    }

    /** Doubles per vector, and the floats that widen into them. */
    private static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;

    private static final VectorSpecies<Float> FS =
            VectorSpecies.of(float.class, VectorShape.forBitSize(DS.length() * Float.SIZE));

    /**
     * The inner product in double (every product of two floats is exact in double): ranking scores near-tie often
     * (units whose representatives are the same tokens' keys tie exactly, and stay tied: equal inputs, equal sums).
     */
    static double dot(float[] a, float[] b) {
        return dot(a, b, 0);
    }

    /** {@link #dot} of {@code a} with the {@code a.length} floats of {@code b} from {@code off}. */
    private static double dot(float[] a, float[] b, int off) {
        int n = a.length;
        int j = 0;
        DoubleVector acc = DoubleVector.zero(DS);
        for (; j <= n - DS.length(); j += DS.length()) {
            DoubleVector x = (DoubleVector) FloatVector.fromArray(FS, a, j).convertShape(VectorOperators.F2D, DS, 0);
            DoubleVector y =
                    (DoubleVector) FloatVector.fromArray(FS, b, off + j).convertShape(VectorOperators.F2D, DS, 0);
            acc = x.fma(y, acc);
        }
        double s = acc.reduceLanes(VectorOperators.ADD);
        for (; j < n; j++) {
            s += (double) a[j] * b[off + j];
        }
        return s;
    }

    /** The exact ranking of every unit for {@code q} on {@code layer} (a full scan). */
    public UnitRanking exact(int layer, float[] q) {
        double[] score = new double[reprs.size()];
        for (int i = 0; i < score.length; i++) {
            score[i] = dot(q, reprs.get(i)[layer]);
        }
        return new UnitRanking.Exact(score);
    }

    /** Units for {@code q} on {@code layer}, best first: exact below {@link #CLUSTER_FROM} units, else from the lists. */
    public UnitRanking rank(int layer, float[] q) {
        if (!clustered()) {
            return exact(layer, q);
        }
        return new Probing(layer, q);
    }

    /** Probing of one layer's lists (see the class comment). */
    private final class Probing implements UnitRanking {
        private final int layer;
        private final float[] q;
        private final ScoreHeap closed; // lists not opened yet, by centroid score
        private final ScoreHeap open = new ScoreHeap(64); // units of the opened lists
        private final long budget; // units that {@code probes} lists of the mean size hold
        private int opened;
        private long scored;

        Probing(int layer, float[] q) {
            this.layer = layer;
            this.q = q;
            List<Cluster> cs = lists.get(layer);
            closed = new ScoreHeap(cs.size());
            budget = (long) probes * reprs.size() / Math.max(1, cs.size());
            for (int c = 0; c < cs.size(); c++) {
                Cluster cl = cs.get(c);
                if (cl.size > 0) {
                    closed.append(dot(q, cl.centroid), c);
                }
            }
            closed.heapify();
        }

        @Override
        public boolean hasNext() {
            return open.size() > 0 || closed.size() > 0;
        }

        @Override
        public int next() {
            boolean appended = false;
            while (closed.size() > 0 && (open.size() == 0 || (opened < probes && scored < budget))) {
                Cluster cl = lists.get(layer).get(closed.pop());
                opened++;
                for (int m = 0; m < cl.size; m++) {
                    open.append(dot(q, cl.vectors, m * dim), cl.members[m]);
                }
                scored += cl.size;
                appended = true;
            }
            if (appended) {
                open.heapify();
            }
            return open.pop();
        }

        @Override
        public long scored() {
            return scored;
        }
    }
}
