package io.engram.topology.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.engram.schemas.SessionIndex;
import io.engram.state.flink.SavepointMemoryReader;
import io.engram.state.inspect.MemoryReport;
import io.engram.state.rocksdb.RocksDbMemoryStore;
import io.engram.state.store.MemoryStoreException;
import io.engram.state.store.StoredSession;
import io.engram.topology.EngramJob;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/** {@code engram state}: tools over stored session memory. */
@Command(
        name = "state",
        description = "Stored session memory. 'engram state inspect' lists memory units.",
        subcommands = StateCommand.Inspect.class)
public final class StateCommand implements Runnable {

    @ParentCommand
    EngramCli root;

    @Override
    public void run() {
        throw new CliException(ExitCode.INVALID_INPUT, "name a state command: inspect");
    }

    /** Where the memory is read from: exactly one of the two. */
    static final class Source {
        @Option(
                names = "--rocksdb",
                paramLabel = "DIR",
                required = true,
                description = "A standalone memory store (RocksDbMemoryStore directory).")
        Path rocksdb;

        @Option(
                names = "--snapshot",
                paramLabel = "DIR",
                required = true,
                description = "A Flink savepoint or retained checkpoint directory (the one with _metadata).")
        Path snapshot;
    }

    enum Format {
        TEXT,
        JSON
    }

    /**
     * {@code engram state inspect}: one table per session (index fields, then unit id, first sequence index, tokens,
     * bytes, KV dtype, checksum status), or JSON.
     */
    @Command(
            name = "inspect",
            description = "List sessions' memory units with their index fields and checksum status, "
                    + "from a RocksDB memory store or a Flink savepoint/checkpoint.")
    static final class Inspect implements Callable<Integer> {

        @ParentCommand
        StateCommand parent;

        @ArgGroup(exclusive = true, multiplicity = "1")
        Source source;

        @Option(
                names = {"-s", "--session"},
                paramLabel = "ID",
                description = "Only these sessions (repeatable); default: every session.")
        List<String> sessions = new ArrayList<>();

        @Option(
                names = "--uid",
                defaultValue = EngramJob.SESSION_MEMORY_UID,
                description =
                        "Uid of the operator whose keyed state holds the memory (--snapshot; default ${DEFAULT-VALUE}).")
        String uid;

        @Option(names = "--format", defaultValue = "text", description = "text or json (default ${DEFAULT-VALUE}).")
        Format format;

        @Override
        public Integer call() throws Exception {
            CliContext ctx = parent.root.context();
            List<StoredSession> stored =
                    source.rocksdb != null ? fromRocksDb(ctx, source.rocksdb) : fromSnapshot(ctx, source.snapshot);
            List<MemoryReport> reports = new ArrayList<>();
            for (StoredSession s : stored) {
                reports.add(MemoryReport.of(s));
            }
            if (!sessions.isEmpty()) {
                List<String> found = reports.stream().map(MemoryReport::session).toList();
                List<String> missing =
                        sessions.stream().filter(s -> !found.contains(s)).toList();
                if (!missing.isEmpty()) {
                    throw new CliException(ExitCode.UNAVAILABLE, "no memory stored for session(s) " + missing);
                }
            }
            java.util.Map<String, io.engram.state.store.StoredPolicy> policies =
                    source.snapshot != null ? readPolicies(source.snapshot) : java.util.Map.of();
            PrintWriter out = ctx.out();
            if (format == Format.JSON) {
                ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
                ArrayNode arr = json(json, reports);
                for (com.fasterxml.jackson.databind.JsonNode n : arr) {
                    io.engram.state.store.StoredPolicy p =
                            policies.get(n.path("session").asText());
                    if (p != null) {
                        ((ObjectNode) n).set("policy", policyJson(json, p));
                    }
                }
                out.println(json.writeValueAsString(arr));
            } else {
                reports.forEach(r -> {
                    text(out, r);
                    io.engram.state.store.StoredPolicy p = policies.get(r.session());
                    if (p != null) {
                        policyText(out, p);
                    }
                });
            }
            out.flush();
            long bad = reports.stream().filter(r -> !r.healthy()).count();
            ctx.err()
                    .printf(
                            "%d session(s), %d unit(s), %,d bytes; %d session(s) with units that fail their checks%n",
                            reports.size(),
                            reports.stream().mapToInt(r -> r.units().size()).sum(),
                            reports.stream().mapToLong(MemoryReport::bytes).sum(),
                            bad);
            ctx.err().flush();
            return ExitCode.OK.code();
        }

        private List<StoredSession> fromRocksDb(CliContext ctx, Path dir) {
            if (!Files.isRegularFile(dir.resolve("CURRENT"))) {
                throw new CliException(
                        ExitCode.INVALID_INPUT, dir + " is not a RocksDB memory store (no CURRENT file)");
            }
            List<StoredSession> out = new ArrayList<>();
            try (RocksDbMemoryStore store = RocksDbMemoryStore.open(dir);
                    Progress progress = Progress.forContext(ctx, "reading " + dir)) {
                List<String> ids = new ArrayList<>(sessions.isEmpty() ? store.sessions() : sessions);
                ids.sort(null); // the store's key order puts shorter ids first; people expect alphabetical
                for (String id : ids) {
                    StoredSession s = StoredSession.read(store, id);
                    if (s != null) {
                        out.add(s);
                    }
                    progress.update(out.size(), ids.size(), out.size());
                }
            } catch (MemoryStoreException e) {
                throw new CliException(ExitCode.UNAVAILABLE, e.getMessage());
            }
            return out;
        }

        private java.util.Map<String, io.engram.state.store.StoredPolicy> readPolicies(Path dir) {
            try {
                return SavepointMemoryReader.readPolicies(dir, uid);
            } catch (MemoryStoreException e) {
                throw new CliException(ExitCode.INVALID_INPUT, e.getMessage());
            }
        }

        private List<StoredSession> fromSnapshot(CliContext ctx, Path dir) {
            if (!Files.isRegularFile(dir.resolve("_metadata"))) {
                throw new CliException(
                        ExitCode.INVALID_INPUT,
                        dir + " is not a savepoint or checkpoint directory (no _metadata file)");
            }
            ctx.err().printf("reading the keyed state of operator %s from %s (a local Flink batch job)%n", uid, dir);
            ctx.err().flush();
            try {
                List<StoredSession> all = SavepointMemoryReader.read(dir, uid);
                return sessions.isEmpty()
                        ? all
                        : all.stream()
                                .filter(s -> sessions.contains(s.session()))
                                .toList();
            } catch (MemoryStoreException e) {
                throw new CliException(ExitCode.INVALID_INPUT, e.getMessage());
            }
        }
    }

    static void text(PrintWriter out, MemoryReport r) {
        SessionIndex i = r.index();
        out.printf("session %s: %d units, %,d bytes%n", r.session(), r.units().size(), r.bytes());
        if (i == null) {
            out.println("  index: none stored");
        } else {
            out.printf(
                    "  index: next_seq %d, events %d, blocks %d, model %s, block_size %d, summarized_events %d, "
                            + "summarized_seq %d%n",
                    i.getNextSeq(),
                    i.getEventCount(),
                    i.getBlockIds().size(),
                    i.getModel(),
                    i.getBlockSize(),
                    i.getSummarizedEvents(),
                    i.getSummarizedSeq());
        }
        out.printf("  %8s %10s %7s %9s %-5s  %s%n", "unit", "first_seq", "tokens", "bytes", "dtype", "checksum");
        for (MemoryReport.Unit u : r.units()) {
            out.printf(
                    "  %8d %10s %7d %9d %-5s  %s%n",
                    u.unitId(),
                    u.firstSeq() < 0 ? "-" : Long.toString(u.firstSeq()),
                    u.tokens(),
                    u.bytes(),
                    u.dtype() == null ? "-" : u.dtype(),
                    u.status() == MemoryReport.Status.OK
                            ? "ok"
                            : u.status().name().toLowerCase() + ": " + u.detail());
        }
    }

    /** The memory policy's units (blocks or episodes with their ranges), pending boundaries, retained tokens, dropped blocks. */
    static void policyText(PrintWriter out, io.engram.state.store.StoredPolicy p) {
        io.engram.schemas.PolicyState st = p.state();
        if (st != null) {
            out.printf(
                    "  policy: %s at next_seq %d, packed_end %d, %d units, pending event boundaries %s, %d retained tokens%s%n",
                    st.getPolicy(),
                    st.getNextSeq(),
                    st.getPackedEnd(),
                    st.getUnitCount(),
                    st.getBoundaries(),
                    st.getRetainedSeqs().size(),
                    st.getEvicted() ? " (evicting)" : "");
        }
        if (!p.units().isEmpty()) {
            out.printf("  %8s %-8s %10s %10s %7s%n", "unit", "kind", "start_seq", "end_seq", "tokens");
            p.units()
                    .forEach((i, u) -> out.printf(
                            "  %8d %-8s %10d %10d %7d%n",
                            i, u.getKind(), u.getStartSeq(), u.getEndSeq(), u.getEndSeq() - u.getStartSeq()));
        }
        if (!p.dropped().isEmpty()) {
            out.printf("  dropped by retention: %d blocks%n", p.dropped().size());
            p.dropped()
                    .forEach((id, d) -> out.printf(
                            "  %8d %-18s first_seq %d, %d tokens, events %d..%d%n",
                            id, d.getReason(), d.getFirstSeq(), d.getTokens(), d.getFirstEvent(), d.getLastEvent()));
        }
    }

    static ObjectNode policyJson(ObjectMapper m, io.engram.state.store.StoredPolicy p) {
        ObjectNode n = m.createObjectNode();
        io.engram.schemas.PolicyState st = p.state();
        if (st != null) {
            n.put("policy", st.getPolicy());
            n.put("next_seq", st.getNextSeq());
            n.put("packed_end", st.getPackedEnd());
            n.put("unit_count", st.getUnitCount());
            ArrayNode b = n.putArray("pending_boundaries");
            st.getBoundaries().forEach(b::add);
            n.put("retained_tokens", st.getRetainedSeqs().size());
        }
        ArrayNode units = n.putArray("units");
        p.units()
                .forEach((i, u) -> units.addObject()
                        .put("index", i)
                        .put("kind", u.getKind().name())
                        .put("start_seq", u.getStartSeq())
                        .put("end_seq", u.getEndSeq()));
        ArrayNode dropped = n.putArray("dropped");
        p.dropped()
                .forEach((id, d) -> dropped.addObject()
                        .put("block_id", id)
                        .put("reason", d.getReason().name())
                        .put("first_seq", d.getFirstSeq())
                        .put("tokens", d.getTokens())
                        .put("first_event", d.getFirstEvent())
                        .put("last_event", d.getLastEvent()));
        return n;
    }

    static ArrayNode json(ObjectMapper m, List<MemoryReport> reports) {
        ArrayNode arr = m.createArrayNode();
        for (MemoryReport r : reports) {
            ObjectNode s = arr.addObject();
            s.put("session", r.session());
            s.put("bytes", r.bytes());
            s.put("healthy", r.healthy());
            SessionIndex i = r.index();
            if (i == null) {
                s.putNull("index");
            } else {
                ObjectNode idx = s.putObject("index");
                idx.put("next_seq", i.getNextSeq());
                idx.put("event_count", i.getEventCount());
                idx.put("model", i.getModel());
                idx.put("block_size", i.getBlockSize());
                idx.put("summarized_events", i.getSummarizedEvents());
                idx.put("summarized_seq", i.getSummarizedSeq());
                ArrayNode ids = idx.putArray("block_ids");
                i.getBlockIds().forEach(ids::add);
                ArrayNode crcs = idx.putArray("block_crcs");
                i.getBlockCrcs().forEach(c -> crcs.add("%08x".formatted(c)));
            }
            ArrayNode units = s.putArray("units");
            for (MemoryReport.Unit u : r.units()) {
                ObjectNode n = units.addObject();
                n.put("unit_id", u.unitId());
                if (u.firstSeq() < 0) {
                    n.putNull("first_seq");
                } else {
                    n.put("first_seq", u.firstSeq());
                }
                n.put("tokens", u.tokens());
                n.put("bytes", u.bytes());
                n.put("dtype", u.dtype());
                n.put("checksum", u.status().name());
                n.put("detail", u.detail());
            }
        }
        return arr;
    }
}
