// A CPU stand-in for the CUDA device language, enough to run engram_kernels.cu unchanged (after the textual rewrites
// in build.sh) on a machine without a GPU: every CUDA thread of a block is a fiber, __syncthreads is a barrier,
// warp shuffles exchange through a per-warp buffer between warp barriers, wmma fragments hold the whole 16x16 tile in every lane. Blocks of
// a grid run one after another, so function-static arrays stand in for __shared__ memory. Test tool only: it checks
// the kernels' indexing, masking and reductions, not their speed or the GPU memory model.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
struct float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };

namespace emu {
struct Block;
extern thread_local dim3 tid;
extern thread_local dim3 bid;
extern dim3 bdim;
extern dim3 gdim;
extern thread_local Block* block;
void syncthreads();
float shfl_xor(float v, int o);
int shfl_xor(int v, int o);
void* dyn_smem();
}  // namespace emu

#define threadIdx emu::tid
#define blockIdx emu::bid
#define blockDim emu::bdim
#define gridDim emu::gdim
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(x)
#define __align__(n) __attribute__((aligned(n)))
#define CUDART_INF_F INFINITY
inline void __syncthreads() { emu::syncthreads(); }
inline float __shfl_xor_sync(unsigned, float v, int o) { return emu::shfl_xor(v, o); }
inline int __shfl_xor_sync(unsigned, int v, int o) { return emu::shfl_xor(v, o); }
template <class T> inline T __ldg(const T* p) { return *p; }
using std::max;
using std::min;

// ---- half and bfloat16 (round to nearest even, as the device conversions)
struct __nv_bfloat16 { unsigned short bits; };
struct __nv_bfloat162 { __nv_bfloat16 x, y; };
struct __half { unsigned short bits; };

inline float __bfloat162float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.bits << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if (std::isnan(f)) return {(unsigned short)((u >> 16) | 0x40)};
    u += 0x7FFF + ((u >> 16) & 1);
    return {(unsigned short)(u >> 16)};
}
inline float2 __bfloat1622float2(__nv_bfloat162 h) { return {__bfloat162float(h.x), __bfloat162float(h.y)}; }
inline __half __float2half_rn(float f) { return {(unsigned short)std::bit_cast<uint16_t>((_Float16)f)}; }
inline float __half2float(__half h) { return (float)std::bit_cast<_Float16>(h.bits); }
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
inline __half __ushort_as_half(unsigned short s) { return {s}; }

// ---- wmma: each lane holds the whole tile; lane 0 of the warp stores
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    float v[16 * 16];  // (row, col) of the 16x16 tile at v[row * 16 + col]
};
template <class F> inline void fill_fragment(F& f, float x) {
    for (float& e : f.v) e = x;
}
template <class T>
inline void load_matrix_sync(fragment<matrix_a, 16, 16, 16, T, row_major>& f, const T* p, unsigned ldm) {
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) f.v[r * 16 + c] = __bfloat162float(p[r * ldm + c]);
}
template <class T>
inline void load_matrix_sync(fragment<matrix_b, 16, 16, 16, T, col_major>& f, const T* p, unsigned ldm) {
    for (int k = 0; k < 16; k++)
        for (int n = 0; n < 16; n++) f.v[k * 16 + n] = __bfloat162float(p[n * ldm + k]);
}
template <class A, class B>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const A& a, const B& b,
                     const fragment<accumulator, 16, 16, 16, float>& c) {
    float out[256];
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 16; n++) {
            float s = c.v[r * 16 + n];
            for (int k = 0; k < 16; k++) s += a.v[r * 16 + k] * b.v[k * 16 + n];
            out[r * 16 + n] = s;
        }
    std::memcpy(d.v, out, sizeof out);
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t) {
    if (threadIdx.x % 32 == 0)
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 16; c++) p[r * ldm + c] = f.v[r * 16 + c];
}
}  // namespace wmma
}  // namespace nvcuda
