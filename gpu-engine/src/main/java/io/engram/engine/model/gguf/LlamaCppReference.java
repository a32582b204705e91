package io.engram.engine.model.gguf;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LlamaOutput;
import de.kherud.llama.ModelParameters;
import de.kherud.llama.args.CacheType;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * llama.cpp (b4916, bundled by {@code de.kherud:llama:4.2.0}) as an independent reference and as the peer that
 * {@code engram bench engine --peer llama.cpp} measures against, on CPU (2 threads unless told).
 *
 * <p>Two paths. The binding's own API ({@link LlamaModel}) gives tokenization ({@link #encode}) and streamed greedy
 * text ({@link #completeText}); it returns text, not token ids, and its {@code n_probs} option aborts the JVM in
 * 4.2.0 (a GGML_ASSERT in the binding's JSON handling), so ids and probabilities come from the second path: llama.cpp's
 * C API in the binding's own {@code libjllama.so}, called through the FFM API ({@link #greedy}, {@link #logits},
 * {@link #tokenize}). The struct layouts below are b4916's {@code llama.h}, checked against the library's defaults
 * when the class loads (the same check the stories260K-gguf PROVENANCE did through ctypes).
 *
 * <p>The KV cache is F32 by default: llama.cpp's default F16 cache moves logits by up to ~0.05. Not thread-safe: one
 * instance per thread. Close it to free the native model and context.
 */
public final class LlamaCppReference implements AutoCloseable {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final int GGML_TYPE_F32 = 0;
    private static final int GGML_TYPE_F16 = 1;

    /** llama_model_params (b4916): 64 bytes. */
    private static final StructLayout MODEL_PARAMS = MemoryLayout.structLayout(
            ValueLayout.ADDRESS.withName("devices"),
            ValueLayout.JAVA_INT.withName("n_gpu_layers"),
            ValueLayout.JAVA_INT.withName("split_mode"),
            ValueLayout.JAVA_INT.withName("main_gpu"),
            MemoryLayout.paddingLayout(4),
            ValueLayout.ADDRESS.withName("tensor_split"),
            ValueLayout.ADDRESS.withName("progress_callback"),
            ValueLayout.ADDRESS.withName("progress_callback_user_data"),
            ValueLayout.ADDRESS.withName("kv_overrides"),
            ValueLayout.JAVA_BOOLEAN.withName("vocab_only"),
            ValueLayout.JAVA_BOOLEAN.withName("use_mmap"),
            ValueLayout.JAVA_BOOLEAN.withName("use_mlock"),
            ValueLayout.JAVA_BOOLEAN.withName("check_tensors"),
            MemoryLayout.paddingLayout(4));

    /** llama_context_params (b4916): 120 bytes. */
    private static final StructLayout CONTEXT_PARAMS = MemoryLayout.structLayout(
            ValueLayout.JAVA_INT.withName("n_ctx"),
            ValueLayout.JAVA_INT.withName("n_batch"),
            ValueLayout.JAVA_INT.withName("n_ubatch"),
            ValueLayout.JAVA_INT.withName("n_seq_max"),
            ValueLayout.JAVA_INT.withName("n_threads"),
            ValueLayout.JAVA_INT.withName("n_threads_batch"),
            ValueLayout.JAVA_INT.withName("rope_scaling_type"),
            ValueLayout.JAVA_INT.withName("pooling_type"),
            ValueLayout.JAVA_INT.withName("attention_type"),
            ValueLayout.JAVA_FLOAT.withName("rope_freq_base"),
            ValueLayout.JAVA_FLOAT.withName("rope_freq_scale"),
            ValueLayout.JAVA_FLOAT.withName("yarn_ext_factor"),
            ValueLayout.JAVA_FLOAT.withName("yarn_attn_factor"),
            ValueLayout.JAVA_FLOAT.withName("yarn_beta_fast"),
            ValueLayout.JAVA_FLOAT.withName("yarn_beta_slow"),
            ValueLayout.JAVA_INT.withName("yarn_orig_ctx"),
            ValueLayout.JAVA_FLOAT.withName("defrag_thold"),
            MemoryLayout.paddingLayout(4),
            ValueLayout.ADDRESS.withName("cb_eval"),
            ValueLayout.ADDRESS.withName("cb_eval_user_data"),
            ValueLayout.JAVA_INT.withName("type_k"),
            ValueLayout.JAVA_INT.withName("type_v"),
            ValueLayout.JAVA_BOOLEAN.withName("logits_all"),
            ValueLayout.JAVA_BOOLEAN.withName("embeddings"),
            ValueLayout.JAVA_BOOLEAN.withName("offload_kqv"),
            ValueLayout.JAVA_BOOLEAN.withName("flash_attn"),
            ValueLayout.JAVA_BOOLEAN.withName("no_perf"),
            MemoryLayout.paddingLayout(3),
            ValueLayout.ADDRESS.withName("abort_callback"),
            ValueLayout.ADDRESS.withName("abort_callback_data"));

    /** llama_batch: 56 bytes. */
    private static final StructLayout BATCH = MemoryLayout.structLayout(
            ValueLayout.JAVA_INT.withName("n_tokens"),
            MemoryLayout.paddingLayout(4),
            ValueLayout.ADDRESS.withName("token"),
            ValueLayout.ADDRESS.withName("embd"),
            ValueLayout.ADDRESS.withName("pos"),
            ValueLayout.ADDRESS.withName("n_seq_id"),
            ValueLayout.ADDRESS.withName("seq_id"),
            ValueLayout.ADDRESS.withName("logits"));

    private static final class Api {
        static final MethodHandle BACKEND_INIT;
        static final MethodHandle MODEL_DEFAULT_PARAMS;
        static final MethodHandle CONTEXT_DEFAULT_PARAMS;
        static final MethodHandle MODEL_LOAD;
        static final MethodHandle INIT_FROM_MODEL;
        static final MethodHandle MODEL_GET_VOCAB;
        static final MethodHandle VOCAB_N_TOKENS;
        static final MethodHandle VOCAB_BOS;
        static final MethodHandle VOCAB_EOS;
        static final MethodHandle BATCH_GET_ONE;
        static final MethodHandle DECODE;
        static final MethodHandle GET_LOGITS_ITH;
        static final MethodHandle KV_CLEAR;
        static final MethodHandle FREE;
        static final MethodHandle MODEL_FREE;
        static final MethodHandle TOKENIZE;
        static final MethodHandle N_EMBD;
        static final MethodHandle N_LAYER;
        static final MethodHandle N_HEAD;
        static final MethodHandle N_HEAD_KV;
        static final MethodHandle N_CTX_TRAIN;
        static final MethodHandle ROPE_TYPE;
        static final MethodHandle META_VAL_STR;
        static final MethodHandle LOG_SET;

        static {
            try {
                // LlamaModel's static initializer extracts and System.load()s libjllama.so into our class loader
                Class.forName(LlamaModel.class.getName(), true, LlamaCppReference.class.getClassLoader());
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException(e);
            }
            SymbolLookup lib = SymbolLookup.loaderLookup();
            ValueLayout a = ValueLayout.ADDRESS;
            ValueLayout i = ValueLayout.JAVA_INT;
            BACKEND_INIT = h(lib, "llama_backend_init", FunctionDescriptor.ofVoid());
            MODEL_DEFAULT_PARAMS = h(lib, "llama_model_default_params", FunctionDescriptor.of(MODEL_PARAMS));
            CONTEXT_DEFAULT_PARAMS = h(lib, "llama_context_default_params", FunctionDescriptor.of(CONTEXT_PARAMS));
            MODEL_LOAD = h(lib, "llama_model_load_from_file", FunctionDescriptor.of(a, a, MODEL_PARAMS));
            INIT_FROM_MODEL = h(lib, "llama_init_from_model", FunctionDescriptor.of(a, a, CONTEXT_PARAMS));
            MODEL_GET_VOCAB = h(lib, "llama_model_get_vocab", FunctionDescriptor.of(a, a));
            VOCAB_N_TOKENS = h(lib, "llama_vocab_n_tokens", FunctionDescriptor.of(i, a));
            VOCAB_BOS = h(lib, "llama_vocab_bos", FunctionDescriptor.of(i, a));
            VOCAB_EOS = h(lib, "llama_vocab_eos", FunctionDescriptor.of(i, a));
            BATCH_GET_ONE = h(lib, "llama_batch_get_one", FunctionDescriptor.of(BATCH, a, i));
            DECODE = h(lib, "llama_decode", FunctionDescriptor.of(i, a, BATCH));
            GET_LOGITS_ITH = h(lib, "llama_get_logits_ith", FunctionDescriptor.of(a, a, i));
            KV_CLEAR = h(lib, "llama_kv_self_clear", FunctionDescriptor.ofVoid(a));
            FREE = h(lib, "llama_free", FunctionDescriptor.ofVoid(a));
            MODEL_FREE = h(lib, "llama_model_free", FunctionDescriptor.ofVoid(a));
            TOKENIZE = h(
                    lib,
                    "llama_tokenize",
                    FunctionDescriptor.of(i, a, a, i, a, i, ValueLayout.JAVA_BOOLEAN, ValueLayout.JAVA_BOOLEAN));
            N_EMBD = h(lib, "llama_model_n_embd", FunctionDescriptor.of(i, a));
            N_LAYER = h(lib, "llama_model_n_layer", FunctionDescriptor.of(i, a));
            N_HEAD = h(lib, "llama_model_n_head", FunctionDescriptor.of(i, a));
            N_HEAD_KV = h(lib, "llama_model_n_head_kv", FunctionDescriptor.of(i, a));
            N_CTX_TRAIN = h(lib, "llama_model_n_ctx_train", FunctionDescriptor.of(i, a));
            ROPE_TYPE = h(lib, "llama_model_rope_type", FunctionDescriptor.of(i, a));
            META_VAL_STR = h(lib, "llama_model_meta_val_str", FunctionDescriptor.of(i, a, a, a, ValueLayout.JAVA_LONG));
            LOG_SET = h(lib, "llama_log_set", FunctionDescriptor.ofVoid(a, a));
            try {
                checkLayouts();
                MethodHandle quiet = MethodHandles.lookup()
                        .findStatic(
                                Api.class,
                                "quiet",
                                MethodType.methodType(void.class, int.class, MemorySegment.class, MemorySegment.class));
                MemorySegment stub = LINKER.upcallStub(quiet, FunctionDescriptor.ofVoid(i, a, a), Arena.global());
                LOG_SET.invokeExact(stub, MemorySegment.NULL);
                BACKEND_INIT.invokeExact();
            } catch (Throwable t) {
                throw new IllegalStateException("cannot initialise llama.cpp through the C API", t);
            }
        }

        @SuppressWarnings("unused")
        private static void quiet(int level, MemorySegment text, MemorySegment user) {
            // llama.cpp logs every load at INFO on stderr; tests only need failures, which come back as return codes
        }

        private static MethodHandle h(SymbolLookup lib, String name, FunctionDescriptor fd) {
            MemorySegment sym = lib.find(name)
                    .orElseThrow(
                            () -> new IllegalStateException(
                                    "symbol " + name
                                            + " not found in libjllama.so; is de.kherud:llama 4.2.0 (llama.cpp b4916) on the classpath?"));
            return LINKER.downcallHandle(sym, fd);
        }

        /** The defaults b4916 documents; a different layout would read as different numbers here. */
        private static void checkLayouts() throws Throwable {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment mp =
                        (MemorySegment) MODEL_DEFAULT_PARAMS.invokeExact((java.lang.foreign.SegmentAllocator) arena);
                MemorySegment cp =
                        (MemorySegment) CONTEXT_DEFAULT_PARAMS.invokeExact((java.lang.foreign.SegmentAllocator) arena);
                boolean ok = mp.get(ValueLayout.JAVA_INT, off(MODEL_PARAMS, "split_mode")) == 1
                        && mp.get(ValueLayout.JAVA_BOOLEAN, off(MODEL_PARAMS, "use_mmap"))
                        && !mp.get(ValueLayout.JAVA_BOOLEAN, off(MODEL_PARAMS, "vocab_only"))
                        && cp.get(ValueLayout.JAVA_INT, off(CONTEXT_PARAMS, "n_seq_max")) == 1
                        && cp.get(ValueLayout.JAVA_FLOAT, off(CONTEXT_PARAMS, "yarn_beta_fast")) == 32f
                        && cp.get(ValueLayout.JAVA_FLOAT, off(CONTEXT_PARAMS, "defrag_thold")) == -1f
                        && cp.get(ValueLayout.JAVA_INT, off(CONTEXT_PARAMS, "type_k")) == GGML_TYPE_F16
                        && cp.get(ValueLayout.JAVA_BOOLEAN, off(CONTEXT_PARAMS, "offload_kqv"))
                        && cp.get(ValueLayout.JAVA_BOOLEAN, off(CONTEXT_PARAMS, "no_perf"));
                if (!ok) {
                    throw new IllegalStateException(
                            "llama.cpp default parameters do not match the b4916 struct layouts");
                }
            }
        }
    }

    private static long off(StructLayout l, String field) {
        return l.byteOffset(MemoryLayout.PathElement.groupElement(field));
    }

    private final Path path;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment model;
    private final MemorySegment ctx;
    private final MemorySegment vocab;
    private final int nVocab;
    private final int contextSize;

    private LlamaCppReference(Path path, MemorySegment model, MemorySegment ctx, int contextSize) throws Throwable {
        this.path = path;
        this.model = model;
        this.ctx = ctx;
        this.contextSize = contextSize;
        this.vocab = (MemorySegment) Api.MODEL_GET_VOCAB.invokeExact(model);
        this.nVocab = (int) Api.VOCAB_N_TOKENS.invokeExact(vocab);
    }

    /** Loads {@code gguf} with an F32 KV cache of {@code contextSize} positions. */
    public static LlamaCppReference open(Path gguf, int contextSize) {
        return open(gguf, contextSize, true);
    }

    /**
     * Loads {@code gguf} on CPU with 2 threads.
     *
     * @param f32KvCache F32 KV cache (exact) rather than llama.cpp's default F16
     * @throws IllegalStateException when llama.cpp refuses the file (its reason is in its log, which is silenced)
     */
    public static LlamaCppReference open(Path gguf, int contextSize, boolean f32KvCache) {
        return open(gguf, contextSize, f32KvCache, 2);
    }

    /** As {@link #open(Path, int, boolean)} with {@code threads} threads for decode and batch (prompt) evaluation. */
    public static LlamaCppReference open(Path gguf, int contextSize, boolean f32KvCache, int threads) {
        try (Arena tmp = Arena.ofConfined()) {
            MemorySegment mp =
                    (MemorySegment) Api.MODEL_DEFAULT_PARAMS.invokeExact((java.lang.foreign.SegmentAllocator) tmp);
            mp.set(ValueLayout.JAVA_INT, off(MODEL_PARAMS, "n_gpu_layers"), 0);
            MemorySegment model = (MemorySegment) Api.MODEL_LOAD.invokeExact(
                    tmp.allocateFrom(gguf.toAbsolutePath().toString()), mp);
            if (model.equals(MemorySegment.NULL)) {
                throw new IllegalStateException("llama.cpp could not load " + gguf);
            }
            MemorySegment cp =
                    (MemorySegment) Api.CONTEXT_DEFAULT_PARAMS.invokeExact((java.lang.foreign.SegmentAllocator) tmp);
            cp.set(ValueLayout.JAVA_INT, off(CONTEXT_PARAMS, "n_ctx"), contextSize);
            cp.set(ValueLayout.JAVA_INT, off(CONTEXT_PARAMS, "n_batch"), contextSize);
            cp.set(ValueLayout.JAVA_INT, off(CONTEXT_PARAMS, "n_ubatch"), contextSize);
            cp.set(ValueLayout.JAVA_INT, off(CONTEXT_PARAMS, "n_threads"), threads);
            cp.set(ValueLayout.JAVA_INT, off(CONTEXT_PARAMS, "n_threads_batch"), threads);
            int kvType = f32KvCache ? GGML_TYPE_F32 : GGML_TYPE_F16;
            cp.set(ValueLayout.JAVA_INT, off(CONTEXT_PARAMS, "type_k"), kvType);
            cp.set(ValueLayout.JAVA_INT, off(CONTEXT_PARAMS, "type_v"), kvType);
            MemorySegment ctx = (MemorySegment) Api.INIT_FROM_MODEL.invokeExact(model, cp);
            if (ctx.equals(MemorySegment.NULL)) {
                Api.MODEL_FREE.invokeExact(model);
                throw new IllegalStateException("llama.cpp could not create a context for " + gguf);
            }
            return new LlamaCppReference(gguf, model, ctx, contextSize);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    public int vocabSize() {
        return nVocab;
    }

    /**
     * Greedy decoding (argmax, lowest id on ties, as llama.cpp's greedy sampler): feeds {@code prompt} from an empty
     * cache (no BOS is added: put it in the prompt), then generates {@code n} tokens, not stopping at EOS.
     */
    public int[] greedy(int[] prompt, int n) {
        return greedyWithLogits(prompt, n).stream().mapToInt(Step::token).toArray();
    }

    /**
     * Wall time of {@link #timedGreedy}: the prompt's prefill, then the {@code steps} one-token decodes after it; the
     * {@code steps + 1} tokens generated.
     */
    public record Timing(long prefillNanos, long decodeNanos, int steps, int[] tokens) {}

    /**
     * {@link #greedy}{@code (prompt, n + 1)}, timing the prompt's prefill and the {@code n} one-token decode steps after
     * it apart (the first generated token comes from the prefill's logits), for throughput benchmarks.
     */
    public Timing timedGreedy(int[] prompt, int n) {
        requireFits(prompt, n + 1);
        clear();
        int[] tokens = new int[n + 1];
        long t0 = System.nanoTime();
        float[] logits = decode(prompt);
        long t1 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            tokens[i] = argmax(logits);
            logits = decode(new int[] {tokens[i]});
        }
        long t2 = System.nanoTime();
        tokens[n] = argmax(logits);
        return new Timing(t1 - t0, t2 - t1, n, tokens);
    }

    /** One generated token and the full next-token logits it was chosen from. */
    public record Step(int token, float[] logits) {}

    /** A greedy run of {@code prompt} and {@code generated} tokens must fit the context, from a non-empty prompt. */
    private void requireFits(int[] prompt, int generated) {
        if (prompt.length == 0 || prompt.length + generated > contextSize) {
            throw new IllegalArgumentException("prompt of %d + %d tokens must be non-empty and fit the context of %d"
                    .formatted(prompt.length, generated, contextSize));
        }
    }

    /** As {@link #greedy}, keeping each step's logits (vocab floats). */
    public List<Step> greedyWithLogits(int[] prompt, int n) {
        requireFits(prompt, n);
        clear();
        List<Step> steps = new ArrayList<>(n);
        float[] logits = decode(prompt);
        for (int i = 0; i < n; i++) {
            int next = argmax(logits);
            steps.add(new Step(next, logits));
            if (i + 1 < n) {
                logits = decode(new int[] {next});
            }
        }
        return steps;
    }

    /**
     * Teacher-forced logits: row {@code p} is the next-token distribution after {@code tokens[0..p]}. Tokens are fed one
     * at a time from an empty cache.
     */
    public float[][] logits(int[] tokens) {
        if (tokens.length > contextSize) {
            throw new IllegalArgumentException(
                    "%d tokens do not fit the context of %d".formatted(tokens.length, contextSize));
        }
        clear();
        float[][] out = new float[tokens.length][];
        for (int p = 0; p < tokens.length; p++) {
            out[p] = decode(new int[] {tokens[p]});
        }
        return out;
    }

    private void clear() {
        try {
            Api.KV_CLEAR.invokeExact(ctx);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Appends {@code tokens} to the cache and returns the logits after the last one. */
    private float[] decode(int[] tokens) {
        try (Arena tmp = Arena.ofConfined()) {
            MemorySegment ids = tmp.allocateFrom(ValueLayout.JAVA_INT, tokens);
            MemorySegment batch = (MemorySegment)
                    Api.BATCH_GET_ONE.invokeExact((java.lang.foreign.SegmentAllocator) tmp, ids, tokens.length);
            int rc = (int) Api.DECODE.invokeExact(ctx, batch);
            if (rc != 0) {
                throw new IllegalStateException("llama_decode returned " + rc + " for " + path);
            }
            MemorySegment p = (MemorySegment) Api.GET_LOGITS_ITH.invokeExact(ctx, -1);
            return p.reinterpret(4L * nVocab).toArray(ValueLayout.JAVA_FLOAT);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    public static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) {
            if (x[i] > x[best]) {
                best = i;
            }
        }
        return best;
    }

    /** The {@code k} most probable tokens of a softmax over {@code logits} (computed in double), most probable first. */
    public record TopK(int[] ids, double[] probs) {}

    public static TopK topK(float[] logits, int k) {
        double max = logits[argmax(logits)];
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        Integer[] order = new Integer[logits.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(
                order, (x, y) -> logits[x] != logits[y] ? Float.compare(logits[y], logits[x]) : Integer.compare(x, y));
        int[] ids = new int[k];
        double[] probs = new double[k];
        for (int i = 0; i < k; i++) {
            ids[i] = order[i];
            probs[i] = Math.exp(logits[order[i]] - max) / sum;
        }
        return new TopK(ids, probs);
    }

    /** llama.cpp's tokenization ({@code llama_tokenize}). */
    public int[] tokenize(String text, boolean addSpecial, boolean parseSpecial) {
        try (Arena tmp = Arena.ofConfined()) {
            byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
            MemorySegment t = tmp.allocate(Math.max(1, utf8.length));
            MemorySegment.copy(utf8, 0, t, ValueLayout.JAVA_BYTE, 0, utf8.length);
            int max = utf8.length + 8;
            MemorySegment out = tmp.allocate(ValueLayout.JAVA_INT, max);
            int n = (int) Api.TOKENIZE.invokeExact(vocab, t, utf8.length, out, max, addSpecial, parseSpecial);
            if (n < 0) {
                throw new IllegalStateException("llama_tokenize needs " + -n + " tokens");
            }
            return out.asSlice(0, 4L * n).toArray(ValueLayout.JAVA_INT);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** The hyper-parameters as llama.cpp read them. {@code ropeType}: 0 = norm (interleaved), 2 = neox (rotate_half). */
    public record Info(
            int nEmbd, int nLayer, int nHead, int nHeadKv, int nCtxTrain, int nVocab, int ropeType, int bos, int eos) {}

    public Info info() {
        try {
            return new Info(
                    (int) Api.N_EMBD.invokeExact(model),
                    (int) Api.N_LAYER.invokeExact(model),
                    (int) Api.N_HEAD.invokeExact(model),
                    (int) Api.N_HEAD_KV.invokeExact(model),
                    (int) Api.N_CTX_TRAIN.invokeExact(model),
                    nVocab,
                    (int) Api.ROPE_TYPE.invokeExact(model),
                    (int) Api.VOCAB_BOS.invokeExact(vocab),
                    (int) Api.VOCAB_EOS.invokeExact(vocab));
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** A metadata value as llama.cpp formats it ({@code llama_model_meta_val_str}), or null when absent. */
    public String metaString(String key) {
        try (Arena tmp = Arena.ofConfined()) {
            MemorySegment buf = tmp.allocate(4096);
            int n = (int) Api.META_VAL_STR.invokeExact(model, tmp.allocateFrom(key), buf, 4096L);
            return n < 0 ? null : buf.getString(0);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void close() {
        try {
            Api.FREE.invokeExact(ctx);
            Api.MODEL_FREE.invokeExact(model);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        } finally {
            arena.close();
        }
    }

    // ---- the binding's own API ----

    private static ModelParameters bindingParams(Path gguf, int contextSize) {
        return new ModelParameters()
                .setModel(gguf.toAbsolutePath().toString())
                .setThreads(2)
                .setCtxSize(contextSize)
                .setGpuLayers(0)
                .setCacheTypeK(CacheType.F32)
                .setCacheTypeV(CacheType.F32)
                .disableLog();
    }

    /** Tokenizes through the binding ({@code LlamaModel.encode}: no BOS, special-token text parsed). */
    public static int[] encode(Path gguf, String text) {
        try (LlamaModel m = new LlamaModel(bindingParams(gguf, 64))) {
            return m.encode(text);
        }
    }

    /** Detokenizes through the binding ({@code LlamaModel.decode}). */
    public static String decode(Path gguf, int[] ids) {
        try (LlamaModel m = new LlamaModel(bindingParams(gguf, 64))) {
            return m.decode(ids);
        }
    }

    /**
     * Greedy text through the binding's server loop: {@code prompt} is sent as token ids (so no BOS is added), then up
     * to {@code n} tokens are generated at temperature 0 with top_k 1 and no penalties. With {@code ignoreEos} false
     * it stops at EOS, as llama.cpp's server does. Returns the streamed pieces, one per chunk (a chunk can hold more
     * than one token when a token ends inside a UTF-8 character; the final empty stop chunk is dropped).
     */
    public static List<String> completeText(Path gguf, int[] prompt, int n, boolean ignoreEos) {
        try (LlamaModel m = new LlamaModel(bindingParams(gguf, Math.max(64, prompt.length + n)))) {
            InferenceParameters ip = new InferenceParameters("")
                    .setNPredict(n)
                    .setTemperature(0f)
                    .setTopK(1)
                    .setRepeatPenalty(1f)
                    .setCachePrompt(false)
                    .setIgnoreEos(ignoreEos);
            // the binding only sets string prompts; llama.cpp's server also takes an array of token ids
            rawParameters(ip)
                    .put(
                            "prompt",
                            Arrays.stream(prompt)
                                    .mapToObj(Integer::toString)
                                    .collect(Collectors.joining(",", "[", "]")));
            List<String> out = new ArrayList<>();
            for (LlamaOutput o : m.generate(ip)) {
                out.add(o.text);
            }
            // the server ends the stream with an empty stop chunk that carries no token
            if (!out.isEmpty() && out.getLast().isEmpty()) {
                out.removeLast();
            }
            return out;
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, String> rawParameters(InferenceParameters ip) {
        try {
            Field f = ip.getClass().getSuperclass().getDeclaredField("parameters");
            f.setAccessible(true);
            return (Map<String, String>) f.get(ip);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("de.kherud:llama changed: no JsonParameters.parameters map", e);
        }
    }
}
