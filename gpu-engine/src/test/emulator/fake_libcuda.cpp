// A stand-in libcuda.so.1 for machines without a GPU: the slice of the CUDA driver API that JCuda's JCudaDriver and
// Engram's CudaBackend call, over host memory, running Engram's kernels (engram_kernels.cu, rewritten by build.sh to
// compile as C++ against cuda_emu.h) with each CUDA thread a fiber on the calling thread. It lets CudaParityTest and CudaModelParityTest run the whole CUDA
// backend, Java side and kernels, on a CPU-only machine; see README.md. Never shipped, never on the main path.
#include "cuda_emu.h"

#include <ucontext.h>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels_emu.cpp"

namespace emu {
thread_local dim3 tid;
thread_local dim3 bid;
dim3 bdim;
dim3 gdim;
thread_local Block* block;

// The threads of a block are fibers (ucontext) on the launching thread, run round-robin: each runs until it waits at
// a barrier (__syncthreads: every live thread of the block; a warp shuffle: every live thread of its warp) or ends.
// One OS thread, deterministic order, no spinning.
enum State { RUNNABLE, AT_BLOCK, AT_WARP, DONE };

struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    State state = RUNNABLE;
};

struct Block {
    std::vector<Fiber> fibers;
    ucontext_t scheduler;
    int current = 0;
    std::vector<float> fbuf;
    std::vector<int> ibuf;
    void* smem = nullptr;
    const std::function<void()>* body = nullptr;
};

static void wait_at(State s) {
    Block* b = block;
    int me = b->current;
    b->fibers[me].state = s;
    swapcontext(&b->fibers[me].ctx, &b->scheduler);
    tid = dim3{(unsigned)me, 0, 0};  // the scheduler may have run other fibers meanwhile
}

void syncthreads() { wait_at(AT_BLOCK); }

template <class T> static T exchange(std::vector<T>& buf, T v, int o) {
    int lane = tid.x % 32, w = tid.x / 32;
    buf[w * 32 + lane] = v;
    wait_at(AT_WARP);
    T r = buf[w * 32 + (lane ^ o)];
    wait_at(AT_WARP);
    return r;
}
float shfl_xor(float v, int o) { return exchange(block->fbuf, v, o); }
int shfl_xor(int v, int o) { return exchange(block->ibuf, v, o); }
void* dyn_smem() { return block->smem; }

static void fiber_main() {
    (*block->body)();
    block->fibers[block->current].state = DONE;
    // returning ends the fiber: uc_link resumes the scheduler
}

static void run_block(Block& b, int n) {
    static thread_local std::vector<std::vector<char>> stacks;  // reused across blocks
    if ((int)stacks.size() < n) stacks.resize(n);
    b.fibers.resize(n);
    for (int t = 0; t < n; t++) {
        Fiber& f = b.fibers[t];
        if (stacks[t].empty()) stacks[t].resize(256 * 1024);
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = stacks[t].data();
        f.ctx.uc_stack.ss_size = stacks[t].size();
        f.ctx.uc_link = &b.scheduler;
        makecontext(&f.ctx, fiber_main, 0);
        f.state = RUNNABLE;
    }
    int warps = (n + 31) / 32;
    for (;;) {
        bool ran = false;
        for (int t = 0; t < n; t++) {
            if (b.fibers[t].state != RUNNABLE) continue;
            b.current = t;
            tid = dim3{(unsigned)t, 0, 0};
            swapcontext(&b.scheduler, &b.fibers[t].ctx);
            ran = true;
        }
        // release warps whose live threads all wait at a shuffle, then the block if all wait at __syncthreads
        bool released = false;
        for (int w = 0; w < warps; w++) {
            bool all = true, any = false;
            for (int t = w * 32; t < std::min(n, w * 32 + 32); t++) {
                State s = b.fibers[t].state;
                if (s == DONE) continue;
                any = true;
                all = all && s == AT_WARP;
            }
            if (any && all) {
                for (int t = w * 32; t < std::min(n, w * 32 + 32); t++)
                    if (b.fibers[t].state == AT_WARP) b.fibers[t].state = RUNNABLE;
                released = true;
            }
        }
        bool live = false, allBlock = true;
        for (auto& f : b.fibers) {
            if (f.state == DONE) continue;
            live = true;
            allBlock = allBlock && f.state == AT_BLOCK;
        }
        if (!live) return;
        if (!released && allBlock) {
            for (auto& f : b.fibers)
                if (f.state == AT_BLOCK) f.state = RUNNABLE;
            released = true;
        }
        if (!ran && !released) {
            std::fprintf(stderr, "cuda emulator: deadlock in block (%u,%u,%u): threads wait at different barriers\n", bid.x,
                         bid.y, bid.z);
            std::abort();
        }
    }
}

void launch(const std::function<void()>& body, dim3 grid, dim3 blk, size_t smemBytes) {
    gdim = grid;
    bdim = blk;
    int n = (int)(blk.x * blk.y * blk.z);
    std::vector<unsigned char> smem(smemBytes + 16);
    Block b;
    b.fbuf.resize(((n + 31) / 32) * 32);
    b.ibuf.resize(((n + 31) / 32) * 32);
    b.smem = smem.data();
    b.body = &body;
    block = &b;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                bid = dim3{x, y, z};
                run_block(b, n);
            }
}
}  // namespace emu

// ---------------------------------------------------------------------------------------------------------------
// the driver API

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef int CUdevice;
struct CUctx_st { int dummy; };
struct CUfunc_st {
    std::string name;
    std::function<void(void**)> call;
};
typedef CUctx_st* CUcontext;
typedef void* CUmodule;
typedef CUfunc_st* CUfunction;
typedef void* CUstream;

template <class... A, size_t... I>
static void invoke(void (*f)(A...), void** p, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(p[I])...);
}
template <class... A> static std::function<void(void**)> wrap(void (*f)(A...)) {
    return [f](void** p) { invoke(f, p, std::index_sequence_for<A...>{}); };
}

static std::map<std::string, CUfunc_st*>& functions() {
    static std::map<std::string, CUfunc_st*>* m = [] {
        auto* m = new std::map<std::string, CUfunc_st*>();
#define K(name) (*m)[#name] = new CUfunc_st{#name, wrap(name)};
        K(engram_get_rows_bf16) K(engram_rms_norm_f32) K(engram_matmul_gemv_bf16) K(engram_matmul_wmma_bf16)
        K(engram_add_bias_f32) K(engram_add_f32) K(engram_swiglu_f32) K(engram_rope_f32) K(engram_attention_f32)
        K(engram_attention_combine_f32) K(engram_attention_mass_f32)
#undef K
        return m;
    }();
    return *m;
}

static CUctx_st the_context;
static const size_t DEVICE_BYTES = 8ull << 30;

extern "C" {
CUresult cuInit(unsigned) { return 0; }
CUresult cuDeviceGetCount(int* n) { *n = 1; return 0; }
CUresult cuDeviceGet(CUdevice* d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
CUresult cuDeviceGetName(char* name, int len, CUdevice) { std::snprintf(name, len, "CPU emulation of a CUDA device"); return 0; }
CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice) { *v = attr == 16 ? 8 : 0; return 0; }  // 16: multiprocessors
CUresult cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice) {
    if (const char* trace = std::getenv("ENGRAM_CUDA_EMULATOR_TRACE")) {  // lets a test run prove it went through here
        if (FILE* f = std::fopen(trace, "a")) {
            std::fprintf(f, "context retained\n");
            std::fclose(f);
        }
    }
    *c = &the_context;
    return 0;
}
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return 0; }
CUresult cuCtxSetCurrent(CUcontext) { return 0; }
CUresult cuMemGetInfo_v2(size_t* free, size_t* total) { *free = DEVICE_BYTES; *total = DEVICE_BYTES; return 0; }
CUresult cuModuleLoadData(CUmodule* m, const void* ptx) {
    if (std::strstr((const char*)ptx, ".entry engram_") == nullptr) return 218;  // CUDA_ERROR_INVALID_PTX
    *m = (void*)&the_context;
    return 0;
}
CUresult cuModuleUnload(CUmodule) { return 0; }
CUresult cuModuleGetFunction(CUfunction* f, CUmodule, const char* name) {
    auto it = functions().find(name);
    if (it == functions().end()) return 500;  // CUDA_ERROR_NOT_FOUND
    *f = it->second;
    return 0;
}
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
    void* m = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!m) return 2;
    std::memset(m, 0xff, bytes);  // NaN everywhere: reading memory nothing wrote shows in the results
    *p = (CUdeviceptr)m;
    return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) { std::free((void*)p); return 0; }
CUresult cuMemAllocHost_v2(void** p, size_t bytes) { *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256); return *p ? 0 : 2; }
CUresult cuMemFreeHost(void* p) { std::free(p); return 0; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void* s, size_t n) { std::memcpy((void*)d, s, n); return 0; }
CUresult cuMemcpyDtoH_v2(void* d, CUdeviceptr s, size_t n) { std::memcpy(d, (void*)s, n); return 0; }
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* s, size_t n, CUstream) { std::memcpy((void*)d, s, n); return 0; }
CUresult cuMemcpyDtoHAsync_v2(void* d, CUdeviceptr s, size_t n, CUstream) { std::memcpy(d, (void*)s, n); return 0; }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream) { std::memmove((void*)d, (void*)s, n); return 0; }
CUresult cuStreamCreate(CUstream* s, unsigned) { *s = (void*)&the_context; return 0; }
CUresult cuStreamSynchronize(CUstream) { return 0; }
CUresult cuStreamDestroy_v2(CUstream) { return 0; }
CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned smem, CUstream, void** params, void**) {
    if (bx * by * bz > 1024 || smem > 48 * 1024 || gx == 0 || gy == 0 || gz == 0 || gy > 65535 || gz > 65535) return 1;
    emu::launch([&] { f->call(params); }, dim3{gx, gy, gz}, dim3{bx, by, bz}, smem);
    return 0;
}
}
