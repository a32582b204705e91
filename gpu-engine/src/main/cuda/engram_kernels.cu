// Engram's CUDA kernels: the op vocabulary of io.engram.engine.backend.Backend (get_rows, rms_norm, matmul, add_bias,
// add, swiglu, rope, attention) plus argmax and the Q8_0 KV codec, compiled to PTX (compute_80) by the gpu-engine
// Maven build and launched through the CUDA driver API by io.engram.engine.backend.cuda.CudaBackend.
//
// Layouts: activations are F32 row-major (n, dim); weight matrices are BF16 row-major (rows = output features,
// cols = input features), uploaded once per process; norm gains and biases are F32 vectors. KV blocks hold F32 rows
// (capacity, kvHeads*headDim), keys un-rotated: RoPE is applied inside attention at the positions the memory policy
// chose. Every entry point is extern "C" and named engram_<op>_<dtype>, the names the Java side launches.
//
// Checked against the CPU backend op by op and end to end by CudaParityTest (skipped where no device is present).

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <mma.h>
#include <math_constants.h>

using namespace nvcuda;

// ---------------------------------------------------------------------------------------------------------------
// small helpers

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// ---------------------------------------------------------------------------------------------------------------
// get_rows: out[i, :] = table[ids[i], :] widened to F32. One block per row. ids were range-checked on the host.

extern "C" __global__ void engram_get_rows_bf16(const __nv_bfloat16* __restrict__ table, const int* __restrict__ ids,
                                                int cols, float* __restrict__ out) {
    int i = blockIdx.x;
    const __nv_bfloat16* row = table + (size_t)ids[i] * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[(size_t)i * cols + c] = __bfloat162float(row[c]);
}

// ---------------------------------------------------------------------------------------------------------------
// rms_norm: out[i,:] = x[i,:] / sqrt(mean(x[i,:]^2) + eps) * gamma. One block (256 threads) per row; out may be x.

extern "C" __global__ void engram_rms_norm_f32(const float* x, const float* __restrict__ gamma, float eps, int dim,
                                               float* out) {
    __shared__ float partial[32];
    const float* row = x + (size_t)blockIdx.x * dim;
    float ss = 0.f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) ss += row[c] * row[c];
    ss = warp_sum(ss);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : 0.f;
        v = warp_sum(v);
        if (threadIdx.x == 0) partial[0] = v;
    }
    __syncthreads();
    float inv = (float)(1.0 / sqrt((double)(partial[0] / dim + eps)));
    float* o = out + (size_t)blockIdx.x * dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) o[c] = row[c] * inv * gamma[c];
}

// ---------------------------------------------------------------------------------------------------------------
// matmul, decode path (n <= GEMV_MAX_TOKENS): out (n, rows) = x (n, cols) . w^T, bandwidth-bound. One warp per
// output row streams the BF16 row once with 16-byte loads and applies it to every token; x (n*cols floats) stays in
// L1/L2. vec8 = 1 when cols % 8 == 0 (rows then start 16-byte aligned).

#define GEMV_MAX_TOKENS 8

extern "C" __global__ void engram_matmul_gemv_bf16(const __nv_bfloat16* __restrict__ w, const float* __restrict__ x,
                                                   int n, int rows, int cols, int vec8, float* __restrict__ out) {
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (warp >= rows) return;
    const __nv_bfloat16* wr = w + (size_t)warp * cols;
    float acc[GEMV_MAX_TOKENS];
#pragma unroll
    for (int t = 0; t < GEMV_MAX_TOKENS; t++) acc[t] = 0.f;
    int done = 0;
    if (vec8) {
        const uint4* w8 = reinterpret_cast<const uint4*>(wr);
        int chunks = cols >> 3;
        for (int c = lane; c < chunks; c += 32) {
            uint4 raw = __ldg(w8 + c);
            const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
            float wf[8];
#pragma unroll
            for (int k = 0; k < 4; k++) {
                float2 f = __bfloat1622float2(h[k]);
                wf[2 * k] = f.x;
                wf[2 * k + 1] = f.y;
            }
#pragma unroll
            for (int t = 0; t < GEMV_MAX_TOKENS; t++) {
                if (t < n) {
                    const float4* xp = reinterpret_cast<const float4*>(x + (size_t)t * cols + (c << 3));
                    float4 a = xp[0], b = xp[1];
                    acc[t] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w
                            + wf[4] * b.x + wf[5] * b.y + wf[6] * b.z + wf[7] * b.w;
                }
            }
        }
        done = chunks << 3;
    }
    for (int c = done + lane; c < cols; c += 32) {
        float wf = __bfloat162float(wr[c]);
#pragma unroll
        for (int t = 0; t < GEMV_MAX_TOKENS; t++) {
            if (t < n) acc[t] += wf * x[(size_t)t * cols + c];
        }
    }
#pragma unroll
    for (int t = 0; t < GEMV_MAX_TOKENS; t++) {
        if (t < n) {
            float v = warp_sum(acc[t]);
            if (lane == 0) out[(size_t)t * rows + warp] = v;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// matmul, prefill path: out (n, rows) = x (n, cols) . w^T on the tensor cores (wmma, BF16 operands, F32 accumulate).
// As a GEMM: M = n tokens, N = rows, K = cols; A = x rounded to BF16 while it is staged, B = w read as a K x N
// column-major matrix. A 128-thread block computes a 64 x 64 tile of out, each warp 32 x 32 (2 x 2 fragments),
// stepping K by 32; tiles are staged through shared memory with zero fill at the edges, so any shape works.

#define MM_TILE 64
#define MM_K 32
#define MM_LDS (MM_K + 8)     // bf16 row stride of the staged tiles (multiple of 8, breaks bank conflicts)
#define MM_LDC (MM_TILE + 4)  // float row stride of the output staging tile

extern "C" __global__ void __launch_bounds__(128) engram_matmul_wmma_bf16(
        const __nv_bfloat16* __restrict__ w, const float* __restrict__ x, int n, int rows, int cols,
        float* __restrict__ out) {
    __shared__ __align__(32) unsigned char smem[MM_TILE * MM_LDC * sizeof(float)];
    __nv_bfloat16* As = reinterpret_cast<__nv_bfloat16*>(smem);             // (64 tokens, MM_LDS)
    __nv_bfloat16* Bs = As + MM_TILE * MM_LDS;                               // (64 rows of w, MM_LDS)
    float* Cs = reinterpret_cast<float*>(smem);                              // reused for the output tile
    int m0 = blockIdx.y * MM_TILE;  // first token
    int n0 = blockIdx.x * MM_TILE;  // first output feature
    int warp = threadIdx.x >> 5;
    int wm = (warp >> 1) * 32;
    int wn = (warp & 1) * 32;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int a = 0; a < 2; a++)
#pragma unroll
        for (int b = 0; b < 2; b++) wmma::fill_fragment(acc[a][b], 0.f);

    for (int k0 = 0; k0 < cols; k0 += MM_K) {
        // stage 64 x 32 of x (F32 -> BF16) and 64 x 32 of w, zero outside the matrices
        for (int e = threadIdx.x; e < MM_TILE * MM_K; e += blockDim.x) {
            int r = e / MM_K, c = e % MM_K;
            int gm = m0 + r, gn = n0 + r, gk = k0 + c;
            float xv = (gm < n && gk < cols) ? x[(size_t)gm * cols + gk] : 0.f;
            As[r * MM_LDS + c] = __float2bfloat16_rn(xv);
            Bs[r * MM_LDS + c] = (gn < rows && gk < cols) ? w[(size_t)gn * cols + gk] : __float2bfloat16_rn(0.f);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < MM_K; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb[2];
#pragma unroll
            for (int a = 0; a < 2; a++) wmma::load_matrix_sync(fa[a], As + (wm + a * 16) * MM_LDS + kk, MM_LDS);
#pragma unroll
            for (int b = 0; b < 2; b++) wmma::load_matrix_sync(fb[b], Bs + (wn + b * 16) * MM_LDS + kk, MM_LDS);
#pragma unroll
            for (int a = 0; a < 2; a++)
#pragma unroll
                for (int b = 0; b < 2; b++) wmma::mma_sync(acc[a][b], fa[a], fb[b], acc[a][b]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int a = 0; a < 2; a++)
#pragma unroll
        for (int b = 0; b < 2; b++)
            wmma::store_matrix_sync(Cs + (wm + a * 16) * MM_LDC + wn + b * 16, acc[a][b], MM_LDC, wmma::mem_row_major);
    __syncthreads();
    for (int e = threadIdx.x; e < MM_TILE * MM_TILE; e += blockDim.x) {
        int r = e / MM_TILE, c = e % MM_TILE;
        if (m0 + r < n && n0 + c < rows) out[(size_t)(m0 + r) * rows + n0 + c] = Cs[r * MM_LDC + c];
    }
}

// ---------------------------------------------------------------------------------------------------------------
// elementwise ops

extern "C" __global__ void engram_add_bias_f32(float* x, const float* __restrict__ bias, int n, int cols) {
    size_t total = (size_t)n * cols;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x)
        x[e] += bias[e % cols];
}

extern "C" __global__ void engram_add_f32(float* acc, const float* __restrict__ x, int len) {
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < len; e += gridDim.x * blockDim.x) acc[e] += x[e];
}

// out = silu(gate) * up; out may alias gate.
extern "C" __global__ void engram_swiglu_f32(const float* gate, const float* __restrict__ up, int len, float* out) {
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < len; e += gridDim.x * blockDim.x) {
        float v = gate[e];
        out[e] = v / (1.f + expf(-v)) * up[e];
    }
}

// ---------------------------------------------------------------------------------------------------------------
// rope: the angle table of io.engram.engine.backend.RopeTable (cos/sin cached for positions below `cached`, computed
// from the F32 angle pos*invFreq above). style 0 = HALF (pairs i, i+half), 1 = INTERLEAVED (pairs 2i, 2i+1).

struct Rope {
    const float* cos_t;   // (cached, half)
    const float* sin_t;   // (cached, half)
    const float* inv_freq;  // (half)
    int cached;
    int half;
    int style;
};

__device__ __forceinline__ void rope_angle(const Rope& r, int pos, int i, float& c, float& s) {
    if (pos >= 0 && pos < r.cached) {
        c = r.cos_t[(size_t)pos * r.half + i];
        s = r.sin_t[(size_t)pos * r.half + i];
    } else {
        float a = (float)pos * r.inv_freq[i];
        sincosf(a, &s, &c);
    }
}

__device__ __forceinline__ int rope_a(const Rope& r, int i) { return r.style == 0 ? i : 2 * i; }
__device__ __forceinline__ int rope_b(const Rope& r, int i) { return r.style == 0 ? i + r.half : 2 * i + 1; }

// qr (n, heads*hd) = q rotated at positions[i]. One block per token.
extern "C" __global__ void engram_rope_f32(const float* __restrict__ q, const int* __restrict__ positions, int heads,
                                           int hd, const float* cos_t, const float* sin_t, const float* inv_freq,
                                           int cached, int style, float* __restrict__ qr) {
    Rope r{cos_t, sin_t, inv_freq, cached, hd / 2, style};
    int i = blockIdx.x;
    int pos = positions[i];
    const float* qi = q + (size_t)i * heads * hd;
    float* oi = qr + (size_t)i * heads * hd;
    for (int e = threadIdx.x; e < heads * r.half; e += blockDim.x) {
        int h = e / r.half, p = e % r.half;
        float c, s;
        rope_angle(r, pos, p, c, s);
        int ia = h * hd + rope_a(r, p), ib = h * hd + rope_b(r, p);
        float a = qi[ia], b = qi[ib];
        oi[ia] = a * c - b * s;
        oi[ib] = b * c + a * s;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// attention over the block KV cache, flash-decoding style.
//
// The host flattens each KV head's spans (AttentionPlan.spans(g)) into segments: a run of `len` slots of one block
// whose key rows start at `k` and value rows at `v` (F32, row stride kvDim, head g at column g*hd), with RoPE positions
// pos_base + pos_step*j (pos_step 1: stored-contiguous or re-indexed; 0: InfLLM's fixed position) and sequence
// indices seq0 + j (causality: a key is visible to query i iff its sequence index <= q_seq[i]). Head g owns segments
// [seg_lo[g], seg_hi[g]) whose key_start fields number its keys 0..total_g. Heads with identical span lists share
// segments.
//
// engram_attention_f32: grid (splits, n, kvHeads), 128 threads. Block (s, i, g) runs an online softmax for the
// `group` query heads of g over keys [s*keys_per_split, (s+1)*keys_per_split) in tiles of 128 keys: phase 1 one
// thread per key (rotate, dot with each query head), phase 2 per-head tile max / rescale, phase 3 threads over
// (head, dim) accumulate p*v (coalesced over dim). It writes un-normalised partials; engram_attention_combine_f32
// merges the splits of each (query, head).

struct Segment {
    unsigned long long k;
    unsigned long long v;
    long long seq0;
    int len;
    int pos_base;
    int pos_step;
    int key_start;
};

#define ATT_TILE 128
#define ATT_MAX_GROUP 16

__device__ __forceinline__ int find_segment(const Segment* segs, int lo, int hi, int key) {
    // the last segment of [lo, hi) whose key_start <= key
    while (hi - lo > 1) {
        int mid = (lo + hi) >> 1;
        if (segs[mid].key_start <= key) lo = mid; else hi = mid;
    }
    return lo;
}

extern "C" __global__ void __launch_bounds__(ATT_TILE) engram_attention_f32(
        const float* __restrict__ qr, const long long* __restrict__ q_seq, const Segment* __restrict__ segs,
        const int* __restrict__ seg_lo, const int* __restrict__ seg_hi, const int* __restrict__ totals,
        int heads, int kv_heads, int hd, float scale, int keys_per_split,
        const float* cos_t, const float* sin_t, const float* inv_freq, int cached, int style,
        float* __restrict__ part_o, float* __restrict__ part_m, float* __restrict__ part_l) {
    extern __shared__ float sm[];
    const int group = heads / kv_heads;
    const int split = blockIdx.x, i = blockIdx.y, g = blockIdx.z, splits = gridDim.x;
    const int kv_dim = kv_heads * hd;
    Rope r{cos_t, sin_t, inv_freq, cached, hd / 2, style};
    float* qs = sm;                          // (group, hd) rotated queries
    float* acc = qs + group * hd;            // (group, hd) un-normalised output
    float* sc = acc + group * hd;            // (group, ATT_TILE) scores, then probabilities
    float* mrow = sc + group * ATT_TILE;     // (group) running max
    float* lrow = mrow + group;              // (group) running sum
    float* corr = lrow + group;              // (group) rescale of this tile
    const float** vrow = reinterpret_cast<const float**>(corr + group + (group & 1));  // (ATT_TILE) value row per key

    for (int e = threadIdx.x; e < group * hd; e += blockDim.x) {
        qs[e] = qr[(size_t)i * heads * hd + (size_t)g * group * hd + e];
        acc[e] = 0.f;
    }
    if (threadIdx.x < group) {
        mrow[threadIdx.x] = -CUDART_INF_F;
        lrow[threadIdx.x] = 0.f;
    }
    const int total = totals[g];
    const int k_begin = split * keys_per_split;
    const int k_end = min(total, k_begin + keys_per_split);
    const long long qseq = q_seq[i];
    const int lo = seg_lo[g], hi = seg_hi[g];
    __syncthreads();

    for (int t0 = k_begin; t0 < k_end; t0 += ATT_TILE) {
        // phase 1: one key per thread
        int key = t0 + threadIdx.x;
        float dot[ATT_MAX_GROUP];
#pragma unroll
        for (int h = 0; h < ATT_MAX_GROUP; h++) dot[h] = 0.f;
        bool visible = false;
        const float* vr = nullptr;
        if (key < k_end) {
            const Segment& sgm = segs[find_segment(segs, lo, hi, key)];
            int j = key - sgm.key_start;
            if (sgm.seq0 + j <= qseq) {
                visible = true;
                const float* kr = reinterpret_cast<const float*>(sgm.k) + (size_t)j * kv_dim + g * hd;
                vr = reinterpret_cast<const float*>(sgm.v) + (size_t)j * kv_dim + g * hd;
                int pos = sgm.pos_base + sgm.pos_step * j;
                for (int p = 0; p < r.half; p++) {
                    float c, s;
                    rope_angle(r, pos, p, c, s);
                    int ia = rope_a(r, p), ib = rope_b(r, p);
                    float ka = kr[ia], kb = kr[ib];
                    float ra = ka * c - kb * s;
                    float rb = kb * c + ka * s;
#pragma unroll
                    for (int h = 0; h < ATT_MAX_GROUP; h++) {
                        if (h < group) dot[h] += qs[h * hd + ia] * ra + qs[h * hd + ib] * rb;
                    }
                }
            }
        }
#pragma unroll
        for (int h = 0; h < ATT_MAX_GROUP; h++) {
            if (h < group) sc[h * ATT_TILE + threadIdx.x] = visible ? dot[h] * scale : -CUDART_INF_F;
        }
        vrow[threadIdx.x] = vr;
        __syncthreads();
        // phase 2: per query head, tile max, probabilities, running sum (warp w takes heads w, w+4, ...)
        int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
        for (int h = warp; h < group; h += ATT_TILE / 32) {
            float* s = sc + h * ATT_TILE;
            float mx = -CUDART_INF_F;
            for (int j = lane; j < ATT_TILE; j += 32) mx = fmaxf(mx, s[j]);
            mx = warp_max(mx);
            float m_old = mrow[h];
            float m_new = fmaxf(m_old, mx);
            float sum = 0.f;
            for (int j = lane; j < ATT_TILE; j += 32) {
                float p = (s[j] == -CUDART_INF_F) ? 0.f : expf(s[j] - m_new);
                s[j] = p;
                sum += p;
            }
            sum = warp_sum(sum);
            if (lane == 0) {
                float c = (m_old == -CUDART_INF_F) ? 0.f : expf(m_old - m_new);
                corr[h] = c;
                lrow[h] = lrow[h] * c + sum;
                mrow[h] = m_new;
            }
        }
        __syncthreads();
        // phase 3: acc = acc*corr + sum_j p_j v_j, threads over (head, dim)
        int tile_keys = min(ATT_TILE, k_end - t0);
        for (int e = threadIdx.x; e < group * hd; e += blockDim.x) {
            int h = e / hd, d = e % hd;
            const float* p = sc + h * ATT_TILE;
            float a = acc[e] * corr[h];
            for (int j = 0; j < tile_keys; j++) {
                if (p[j] != 0.f) a += p[j] * vrow[j][d];
            }
            acc[e] = a;
        }
        __syncthreads();
    }
    for (int e = threadIdx.x; e < group * hd; e += blockDim.x) {
        int h = g * group + e / hd, d = e % hd;
        part_o[(((size_t)i * heads + h) * splits + split) * hd + d] = acc[e];
    }
    if (threadIdx.x < group) {
        int h = g * group + threadIdx.x;
        part_m[((size_t)i * heads + h) * splits + split] = mrow[threadIdx.x];
        part_l[((size_t)i * heads + h) * splits + split] = lrow[threadIdx.x];
    }
}

// out (n, heads*hd) and lse (n, heads) from the partials; one block of hd threads per (query, head).
extern "C" __global__ void engram_attention_combine_f32(const float* __restrict__ part_o, const float* __restrict__ part_m,
                                                        const float* __restrict__ part_l, int heads, int hd, int splits,
                                                        float* __restrict__ out, float* __restrict__ lse) {
    int ih = blockIdx.x;  // i * heads + h
    const float* m = part_m + (size_t)ih * splits;
    const float* l = part_l + (size_t)ih * splits;
    float mx = -CUDART_INF_F;
    for (int s = 0; s < splits; s++) mx = fmaxf(mx, m[s]);
    float den = 0.f;
    for (int s = 0; s < splits; s++) den += (m[s] == -CUDART_INF_F) ? 0.f : l[s] * expf(m[s] - mx);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float num = 0.f;
        for (int s = 0; s < splits; s++) {
            if (m[s] != -CUDART_INF_F) num += part_o[((size_t)ih * splits + s) * hd + d] * expf(m[s] - mx);
        }
        out[(size_t)ih * hd + d] = num / den;
    }
    if (threadIdx.x == 0) lse[ih] = mx + logf(den);
}

// Attention mass per key for AttentionObserver: mass[g][key] = sum over queries i and the group's heads h of
// exp(score(i, h, key) - lse(i, h)), the probability the softmax gave the key. One thread per (key, g).
extern "C" __global__ void engram_attention_mass_f32(
        const float* __restrict__ qr, const long long* __restrict__ q_seq, int n, const Segment* __restrict__ segs,
        const int* __restrict__ seg_lo, const int* __restrict__ seg_hi, const int* __restrict__ totals,
        int heads, int kv_heads, int hd, float scale, const float* cos_t, const float* sin_t,
        const float* inv_freq, int cached, int style, const float* __restrict__ lse, int mass_stride,
        float* __restrict__ mass) {
    int g = blockIdx.y;
    int key = blockIdx.x * blockDim.x + threadIdx.x;
    if (key >= totals[g]) return;
    int group = heads / kv_heads, kv_dim = kv_heads * hd;
    Rope r{cos_t, sin_t, inv_freq, cached, hd / 2, style};
    const Segment& sgm = segs[find_segment(segs, seg_lo[g], seg_hi[g], key)];
    int j = key - sgm.key_start;
    const float* kr = reinterpret_cast<const float*>(sgm.k) + (size_t)j * kv_dim + g * hd;
    int pos = sgm.pos_base + sgm.pos_step * j;
    float total = 0.f;
    for (int i = 0; i < n; i++) {
        if (sgm.seq0 + j > q_seq[i]) continue;
        for (int hh = 0; hh < group; hh++) {
            int h = g * group + hh;
            const float* q = qr + ((size_t)i * heads + h) * hd;
            float dot = 0.f;
            for (int p = 0; p < r.half; p++) {
                float c, s;
                rope_angle(r, pos, p, c, s);
                int ia = rope_a(r, p), ib = rope_b(r, p);
                float ka = kr[ia], kb = kr[ib];
                dot += q[ia] * (ka * c - kb * s) + q[ib] * (kb * c + ka * s);
            }
            total += expf(dot * scale - lse[(size_t)i * heads + h]);
        }
    }
    mass[(size_t)g * mass_stride + key] = total;
}

