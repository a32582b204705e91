package io.engram.it;

import static org.assertj.core.api.Assertions.assertThat;

import io.engram.engine.model.synthetic.TinyModels;
import io.engram.engine.tensor.DType;
import io.engram.schemas.Answer;
import io.engram.schemas.EngramSchemas;
import io.engram.topology.EngineSessionStage;
import io.engram.topology.KafkaOptions;
import io.engram.topology.cli.CliContext;
import io.engram.topology.cli.EngramCli;
import io.engram.topology.options.ResolvedOptions;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * {@code engram submit} against a Flink cluster's REST endpoint (a MiniCluster serving REST on a free port): the jar
 * is uploaded, the job runs, content and a question produced with {@code engram produce}/{@code ask}-style events get
 * their answer on the answers topic. The cluster resolves classes parent-first because it shares this JVM's classpath.
 */
class SubmitIT {

    @RegisterExtension
    static final KafkaBroker KAFKA = new KafkaBroker();

    static MiniCluster cluster;
    static URI rest;

    @BeforeAll
    static void startCluster() throws Exception {
        EngramSchemas.trustEngramClasses();
        Configuration conf = new Configuration();
        conf.set(RestOptions.BIND_PORT, "0");
        conf.set(CoreOptions.CLASSLOADER_RESOLVE_ORDER, "parent-first");
        cluster = new MiniCluster(new MiniClusterConfiguration.Builder().setNumTaskManagers(1).setNumSlotsPerTaskManager(2)
                .setConfiguration(conf).build());
        cluster.start();
        rest = cluster.getRestAddress().get(30, TimeUnit.SECONDS);
    }

    @AfterAll
    static void stopCluster() throws Exception {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    void submittedJobAnswersQuestions() throws Exception {
        Path jar = Path.of("..", "topology", "target", "engram.jar").toAbsolutePath().normalize();
        assertThat(jar).as("the fat jar is built before the integration tests").exists();
        Path model = TinyModels.write(KAFKA.newDir("model"), TinyModels.Variant.LLAMA, DType.F32, 42);
        ResolvedOptions options = KAFKA.newOptions(2, Map.of());
        List<String> args = new ArrayList<>();
        for (String key : List.of("engram.kafka.bootstrap-servers", "engram.kafka.topic.input", "engram.kafka.topic.answers",
                "engram.kafka.topic.summaries", "engram.kafka.topic.attributions", "engram.kafka.topic.dead-letters",
                "engram.kafka.group-id", "engram.kafka.transactional-id-prefix", "engram.data-dir")) {
            args.add("--set");
            args.add(key + "=" + options.formatted(options.options().stream().filter(o -> o.key().equals(key)).findFirst().orElseThrow()));
        }
        args.addAll(List.of("--set", "engram.model.dir=" + model, "--set", "engram.job.checkpoint-interval=300ms",
                "--set", "engram.job.checkpoint-dir=" + KAFKA.newDir("chk").toUri(), "--set", "engram.engine.max-new-tokens=4"));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CliContext ctx = new CliContext(new PrintWriter(out, true), new PrintWriter(err, true), Map.of(), InputStream.nullInputStream(),
                false, EngineSessionStage::from, new CompletableFuture<>());
        List<String> submit = new ArrayList<>(args);
        submit.addAll(List.of("submit", "--jobmanager", rest.toString(), "--jar", jar.toString()));
        assertThat(new EngramCli(ctx).execute(submit.toArray(String[]::new))).as("exit code; stderr: %s", err).isZero();
        JobID id = JobID.fromHexString(out.toString().trim());
        assertThat(KafkaBroker.await(() -> status(id) == JobStatus.RUNNING, Duration.ofSeconds(60))).as("job running").isTrue();

        Path doc = KAFKA.newDir("doc").resolve("doc.txt");
        Files.writeString(doc, "The vault code is 7481.\n\nThe keeper counted 212 gulls.\n");
        List<String> produce = new ArrayList<>(args);
        produce.addAll(List.of("produce", "-s", "sub", doc.toString()));
        assertThat(new EngramCli(ctx).execute(produce.toArray(String[]::new))).as("produce; stderr: %s", err).isZero();
        List<String> ask = new ArrayList<>(args);
        ask.addAll(List.of("ask", "-s", "sub", "--via", "kafka", "What is the vault code?"));
        assertThat(new EngramCli(ctx).execute(ask.toArray(String[]::new))).as("ask; stderr: %s", err).isZero();

        try (KafkaConsumer<byte[], byte[]> c = KAFKA.readCommitted(options.get(KafkaOptions.ANSWERS_TOPIC))) {
            List<ConsumerRecord<byte[], byte[]>> recs = KafkaBroker.pollUntil(c, r -> !r.isEmpty(), Duration.ofSeconds(60));
            assertThat(recs).hasSize(1);
            Answer a = Answer.getDecoder().decode(recs.get(0).value());
            assertThat(a.getSessionId()).isEqualTo("sub");
            assertThat(a.getCitations()).isNotEmpty();
        }
        cluster.cancelJob(id).get(30, TimeUnit.SECONDS);
    }

    static JobStatus status(JobID id) {
        try {
            return cluster.getJobStatus(id).get(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            return null;
        }
    }
}
