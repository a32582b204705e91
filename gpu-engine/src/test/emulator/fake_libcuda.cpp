// A stand-in libcuda.so.1 for machines without a GPU: the slice of the CUDA driver API that JCuda's JCudaDriver and
// Engram's CudaBackend call, over host memory, running Engram's kernels (engram_kernels.cu, rewritten by build.sh to
// compile as C++ against cuda_emu.h) on host threads. It lets CudaParityTest and CudaModelParityTest run the whole CUDA
// backend, Java side and kernels, on a CPU-only machine; see README.md. Never shipped, never on the main path.
#include "cuda_emu.h"

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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

struct Block {
    std::unique_ptr<std::barrier<>> bar;
    std::vector<std::unique_ptr<std::barrier<>>> warp;
    std::vector<float> fbuf;
    std::vector<int> ibuf;
    void* smem = nullptr;
};

void syncthreads() { block->bar->arrive_and_wait(); }

template <class T> static T exchange(std::vector<T>& buf, T v, int o) {
    int lane = tid.x % 32, w = tid.x / 32;
    buf[w * 32 + lane] = v;
    block->warp[w]->arrive_and_wait();
    T r = buf[w * 32 + (lane ^ o)];
    block->warp[w]->arrive_and_wait();
    return r;
}
float shfl_xor(float v, int o) { return exchange(block->fbuf, v, o); }
int shfl_xor(int v, int o) { return exchange(block->ibuf, v, o); }
void* dyn_smem() { return block->smem; }

// A pool of host threads, one per CUDA thread of the largest block seen; a block runs when all of its threads run.
class Pool {
  public:
    void run(int n, const std::function<void(int)>& job) {
        std::unique_lock<std::mutex> l(m_);
        while ((int)workers_.size() < n) {
            int i = (int)workers_.size();
            long start = generation_;  // the job about to be posted is new to this worker
            workers_.emplace_back([this, i, start] { loop(i, start); });
        }
        job_ = &job;
        active_ = n;
        remaining_ = n;
        generation_++;
        cv_.notify_all();
        done_.wait(l, [this] { return remaining_ == 0; });
    }

  private:
    void loop(int i, long seen) {
        for (;;) {
            const std::function<void(int)>* job;
            {
                std::unique_lock<std::mutex> l(m_);
                cv_.wait(l, [&] { return generation_ != seen; });
                seen = generation_;
                if (i >= active_) continue;
                job = job_;
            }
            (*job)(i);
            std::lock_guard<std::mutex> l(m_);
            if (--remaining_ == 0) done_.notify_all();
        }
    }
    std::mutex m_;
    std::condition_variable cv_, done_;
    std::vector<std::thread> workers_;
    const std::function<void(int)>* job_ = nullptr;
    long generation_ = 0;
    int active_ = 0, remaining_ = 0;
};

static Pool& pool() {
    static Pool* p = new Pool();  // never destroyed: its threads outlive static destruction
    return *p;
}

void launch(const std::function<void()>& body, dim3 grid, dim3 blk, size_t smemBytes) {
    gdim = grid;
    bdim = blk;
    int n = (int)(blk.x * blk.y * blk.z);
    std::vector<unsigned char> smem(smemBytes + 16);
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                Block b;
                b.bar = std::make_unique<std::barrier<>>(n);
                for (int w = 0; w < (n + 31) / 32; w++) b.warp.push_back(std::make_unique<std::barrier<>>(std::min(32, n - w * 32)));
                b.fbuf.resize(((n + 31) / 32) * 32);
                b.ibuf.resize(((n + 31) / 32) * 32);
                b.smem = smem.data();
                dim3 bi{x, y, z};
                std::function<void(int)> job = [&](int t) {
                    tid = dim3{(unsigned)t, 0, 0};
                    bid = bi;
                    block = &b;
                    body();
                };
                pool().run(n, job);
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
        K(engram_attention_combine_f32) K(engram_attention_mass_f32) K(engram_argmax_f32) K(engram_quantize_q8_0)
        K(engram_dequantize_q8_0)
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
CUresult cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice) { *c = &the_context; return 0; }
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
