package io.engram.topology.cli;

import io.engram.schemas.Answer;
import io.engram.schemas.DeadLetter;
import io.engram.schemas.EngramSchemas;
import io.engram.schemas.ErrorClass;
import io.engram.topology.KafkaOptions;
import io.engram.topology.options.ResolvedOptions;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.Set;
import java.util.function.Function;
import org.apache.kafka.clients.producer.KafkaProducer;

/**
 * {@code engram bench reliability}: the fault-injection soak at any length. {@code engram run} runs in a child JVM
 * ({@link EngramProcess}) with the session operator failing on purpose at a share of ingests and answers
 * ({@code engram.faults.*}) and is killed with SIGKILL after random rounds of the stream (broker, job and query app at
 * once, mid-ingest, mid-answer or mid-checkpoint) and started again over its data directory. Then the same stream minus
 * the events the faults dead-lettered runs through a fresh child without any fault. Every query must have exactly one
 * outcome, and every answer the same text, memory fingerprint and memory tokens as the fault-free run's.
 */
final class ReliabilityBenchRun {

    /** @param model model folder for the child (null: its default, models/engram-tiny in the working directory) */
    record Params(
            Path model,
            int sessions,
            int rounds,
            int kills,
            double faultRate,
            long seed,
            Path workDir,
            Duration timeout,
            Function<Map<String, String>, ResolvedOptions> options) {}

    /** The soak's counts; clean when nothing was duplicated, lost or different. */
    record Result(
            int kills,
            int restores,
            int events,
            int queries,
            int answered,
            int contentDeadLettered,
            int queriesDeadLettered,
            int duplicates,
            int lost,
            int differ,
            List<String> problems,
            double seconds) {
        boolean clean() {
            return duplicates == 0 && lost == 0 && differ == 0;
        }
    }

    private ReliabilityBenchRun() {}

    static int run(CliContext ctx, Params p) throws Exception {
        Result r = soak(p, ctx.err());
        print(ctx.out(), p, r);
        if (!r.clean()) {
            throw new CliException(
                    ExitCode.INTERNAL,
                    "reliability soak found %d duplicates, %d lost, %d different answers: %s"
                            .formatted(
                                    r.duplicates(),
                                    r.lost(),
                                    r.differ(),
                                    String.join(
                                            "; ",
                                            r.problems()
                                                    .subList(
                                                            0,
                                                            Math.min(
                                                                    5,
                                                                    r.problems().size())))));
        }
        return ExitCode.OK.code();
    }

    static Result soak(Params p, PrintWriter log) throws Exception {
        EngramSchemas.trustEngramClasses();
        long t0 = System.nanoTime();
        List<List<SoakWorkload.Event>> rounds = SoakWorkload.rounds(p.sessions(), p.rounds(), p.seed());
        List<SoakWorkload.Event> all = rounds.stream().flatMap(List::stream).toList();
        List<SoakWorkload.Event> queries =
                all.stream().filter(SoakWorkload.Event::query).toList();
        Random random = new Random(p.seed() * 31 + 7);
        Set<Integer> killAfter = new HashSet<>();
        while (killAfter.size() < Math.min(p.kills(), p.rounds())) {
            killAfter.add(random.nextInt(p.rounds()));
        }
        Files.createDirectories(p.workDir());

        Map<String, String> faulty = settings(p);
        faulty.put("engram.faults.points", "INGEST,ANSWER");
        faulty.put("engram.faults.rate", Double.toString(p.faultRate()));
        faulty.put("engram.faults.seed", Long.toString(p.seed()));
        EngramProcess run = new EngramProcess(p.workDir().resolve("faulty"), freePort(), faulty);
        ResolvedOptions kafka = p.options().apply(Map.of(KafkaOptions.BOOTSTRAP_SERVERS.key(), run.bootstrap()));
        String input = kafka.get(KafkaOptions.INPUT_TOPIC);
        int kills = 0;
        SoakWorkload.Outcomes faultyOut;
        try (run) {
            run.start(p.timeout());
            for (int i = 0; i < rounds.size(); i++) {
                try (KafkaProducer<byte[], byte[]> producer = KafkaClients.producer(kafka)) {
                    SoakWorkload.produce(producer, input, rounds.get(i));
                }
                Thread.sleep(random.nextInt(1500)); // the kill lands mid-ingest, mid-answer or mid-checkpoint
                if (killAfter.contains(i)) {
                    log.printf(
                            "reliability: round %d of %d produced; kill -9 of engram run, restarting%n",
                            i + 1, rounds.size());
                    run.kill();
                    kills++;
                    run.start(p.timeout());
                }
            }
            log.printf(
                    "reliability: %d events produced, %d kills; waiting for every query's outcome%n",
                    all.size(), kills);
            faultyOut = SoakWorkload.collect(kafka, queries, p.timeout(), Duration.ofSeconds(5));
        }

        // the same stream minus what the injected faults refused, through a child that never fails
        Set<String> refused = new HashSet<>();
        faultyOut.deadLetters().forEach((k, ds) -> {
            if (ds.stream().anyMatch(d -> d.getErrorClass() == ErrorClass.PROCESSING_FAILED)) {
                refused.add(k);
            }
        });
        List<List<SoakWorkload.Event>> cleanRounds = rounds.stream()
                .map(r -> r.stream().filter(e -> !refused.contains(e.key())).toList())
                .toList();
        EngramProcess reference = new EngramProcess(p.workDir().resolve("reference"), freePort(), settings(p));
        ResolvedOptions refKafka =
                p.options().apply(Map.of(KafkaOptions.BOOTSTRAP_SERVERS.key(), reference.bootstrap()));
        SoakWorkload.Outcomes refOut;
        log.printf(
                "reliability: fault-free run over the %d events not refused by a fault%n", all.size() - refused.size());
        try (reference) {
            reference.start(p.timeout());
            try (KafkaProducer<byte[], byte[]> producer = KafkaClients.producer(refKafka)) {
                for (List<SoakWorkload.Event> r : cleanRounds) {
                    SoakWorkload.produce(producer, input, r);
                }
            }
            refOut = SoakWorkload.collect(
                    refKafka,
                    queries.stream().filter(q -> !refused.contains(q.key())).toList(),
                    p.timeout(),
                    Duration.ofSeconds(2));
        }
        return compare(all, faultyOut, refOut, refused, kills, run.restores(), (System.nanoTime() - t0) / 1e9);
    }

    static Result compare(
            List<SoakWorkload.Event> all,
            SoakWorkload.Outcomes faulty,
            SoakWorkload.Outcomes ref,
            Set<String> refused,
            int kills,
            int restores,
            double seconds) {
        int duplicates = 0;
        int lost = 0;
        int differ = 0;
        int answered = 0;
        int contentDead = 0;
        int queriesDead = 0;
        List<String> problems = new ArrayList<>();
        for (SoakWorkload.Event e : all) {
            int n = faulty.count(e);
            List<DeadLetter> dead = faulty.deadLetters().getOrDefault(e.key(), List.of());
            if (!e.query()) {
                contentDead += dead.isEmpty() ? 0 : 1;
                if (dead.size() > 1) {
                    duplicates += dead.size() - 1;
                    problems.add(e.key() + " dead-lettered " + dead.size() + " times");
                }
                continue;
            }
            if (n == 0) {
                lost++;
                problems.add(e.key() + " has no outcome");
                continue;
            }
            if (n > 1) {
                duplicates += n - 1;
                problems.add(e.key() + " has " + n + " outcomes");
            }
            List<Answer> answers = faulty.answers().getOrDefault(e.key(), List.of());
            if (answers.isEmpty()) {
                queriesDead++;
                if (!refused.contains(e.key())) { // not a fault's: the fault-free run must refuse it the same way
                    List<DeadLetter> refDead = ref.deadLetters().getOrDefault(e.key(), List.of());
                    if (refDead.isEmpty()
                            || refDead.get(0).getErrorClass() != dead.get(0).getErrorClass()) {
                        differ++;
                        problems.add(e.key() + " dead-lettered " + dead.get(0).getErrorClass() + " only with faults");
                    }
                }
                continue;
            }
            answered++;
            Answer a = answers.get(0);
            List<Answer> refAnswers = ref.answers().getOrDefault(e.key(), List.of());
            if (refAnswers.isEmpty()) {
                differ++;
                problems.add(e.key() + " answered only with faults");
            } else if (!same(a, refAnswers.get(0))) {
                differ++;
                Answer b = refAnswers.get(0);
                problems.add("%s: '%s' (memory %s, %d tokens) vs fault-free '%s' (memory %s, %d tokens)"
                        .formatted(
                                e.key(),
                                a.getText(),
                                a.getMemory().getFingerprint(),
                                a.getMemoryTokens(),
                                b.getText(),
                                b.getMemory().getFingerprint(),
                                b.getMemoryTokens()));
            }
        }
        int queries = (int) all.stream().filter(SoakWorkload.Event::query).count();
        return new Result(
                kills,
                restores,
                all.size(),
                queries,
                answered,
                contentDead,
                queriesDead,
                duplicates,
                lost,
                differ,
                problems,
                seconds);
    }

    private static boolean same(Answer a, Answer b) {
        return a.getText().equals(b.getText())
                && a.getMemoryTokens() == b.getMemoryTokens()
                && Objects.equals(a.getMemory().getFingerprint(), b.getMemory().getFingerprint());
    }

    static void print(PrintWriter out, Params p, Result r) {
        out.printf(
                "engram bench reliability: %d sessions x %d rounds (a turn and a question each), faults at INGEST,ANSWER "
                        + "rate %.2f, seed %d, kill -9 of engram run after %d random rounds%n",
                p.sessions(), p.rounds(), p.faultRate(), p.seed(), r.kills());
        out.println("| kills | restores | events | queries | answered | content dead-lettered | queries dead-lettered "
                + "| duplicates | lost | answers != fault-free | wall s |");
        out.println("|---|---|---|---|---|---|---|---|---|---|---|");
        out.printf(
                "| %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %.0f |%n",
                r.kills(),
                r.restores(),
                r.events(),
                r.queries(),
                r.answered(),
                r.contentDeadLettered(),
                r.queriesDeadLettered(),
                r.duplicates(),
                r.lost(),
                r.differ(),
                r.seconds());
        r.problems().forEach(s -> out.println("  " + s));
        out.flush();
    }

    private static Map<String, String> settings(Params p) {
        Map<String, String> s = new LinkedHashMap<>();
        if (p.model() != null) {
            s.put("engram.model.dir", p.model().toAbsolutePath().toString());
        }
        s.put("engram.job.checkpoint-interval", "500ms");
        return s;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
