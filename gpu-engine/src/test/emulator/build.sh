#!/usr/bin/env bash
# Builds the CPU stand-in libcuda.so.1 (see README.md) into gpu-engine/target/cuda-emulator.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/../../../target/cuda-emulator}
mkdir -p "$OUT"
sed -e 's|#include <cuda_fp16.h>|#include "cuda_emu.h"|' -e '/#include <cuda_bf16.h>/d' -e '/#include <mma.h>/d' \
    -e '/#include <math_constants.h>/d' -e 's|extern __shared__ float sm\[\];|float* sm = (float*) emu::dyn_smem();|' \
    -e 's|__shared__|static|g' "$HERE/../../main/cuda/engram_kernels.cu" > "$OUT/kernels_emu.cpp"
g++ -std=c++20 -O2 -g -fno-strict-aliasing -fPIC -shared -Wall -Wno-unused-function -Wno-unknown-pragmas -Wno-sign-compare -I "$HERE" -I "$OUT" -Wl,-soname,libcuda.so.1 \
    -o "$OUT/libcuda.so.1" "$HERE/fake_libcuda.cpp" -lpthread
echo "$OUT/libcuda.so.1"
