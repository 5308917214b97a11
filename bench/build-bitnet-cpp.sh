#!/bin/sh
# Builds bitnet.cpp (microsoft/BitNet) for bench/peers.mjs, contention.mjs and lookup.mjs: the I2_S
# path in Release, with the flags BitNet's setup_env.py passes to cmake, but without its model
# download and TL2 codegen (the I2_S kernels do not include the generated header).
#
# Usage: bench/build-bitnet-cpp.sh CHECKOUT [OUT_DIR]
#   CHECKOUT  a BitNet source tree with 3rdparty/llama.cpp filled in (a clone with submodules,
#             or `git archive` of both repositories; see bench/README.md, "bitnet.cpp")
#   OUT_DIR   cmake build directory (default CHECKOUT/build); binaries land in OUT_DIR/bin
# Env: CC / CXX pick the compiler (default: the newest clang-NN >= 18 on PATH, else clang);
#      JOBS (default 2). Runs under `nice` so a shared machine stays usable.
set -eu

usage() { echo "usage: $0 CHECKOUT [OUT_DIR]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
src=$(cd "$1" 2>/dev/null && pwd) || { echo "$1: not a directory" >&2; exit 1; }
out=${2:-$src/build}
ggml=$src/3rdparty/llama.cpp/ggml/src/ggml.c

[ -f "$src/src/ggml-bitnet-mad.cpp" ] || { echo "$src is not a BitNet checkout (no src/ggml-bitnet-mad.cpp)" >&2; exit 1; }
[ -f "$ggml" ] || { echo "$src/3rdparty/llama.cpp is empty: fill the submodule first (bench/README.md)" >&2; exit 1; }
# The parallel I2_S GEMV/GEMM (November 2025) are wired into the fork's type traits; an older
# submodule builds fine but runs the 2024 per-row vec_dot, which is not the engine to compare with.
grep -q ggml_gemv_i2_i8_s "$ggml" || { echo "3rdparty/llama.cpp predates the parallel I2_S kernels (no ggml_gemv_i2_i8_s): use XsquirrelC/llama.cpp 0f0e7dae or later" >&2; exit 1; }

pick_clang() {
  for v in 22 21 20 19 18; do
    command -v "clang-$v" >/dev/null 2>&1 && { echo "clang-$v clang++-$v"; return; }
  done
  command -v clang >/dev/null 2>&1 && { echo "clang clang++"; return; }
  echo "no clang found: BitNet needs clang >= 18 (Debian: apt-get install clang-19 libomp-19-dev cmake)" >&2
  exit 1
}
pair=$(pick_clang) || exit 1
set -- $pair
cc=${CC:-$1}
cxx=${CXX:-$2}
command -v cmake >/dev/null 2>&1 || { echo "cmake not found (apt-get install cmake)" >&2; exit 1; }

# GGML_NATIVE (on by default) compiles with -march=native: the I2_S kernels are AVX2 code.
nice -n 10 cmake -S "$src" -B "$out" -DBITNET_X86_TL2=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_SERVER=OFF
nice -n 10 cmake --build "$out" --config Release -j "${JOBS:-2}" --target llama-bench llama-quantize llama-cli llama-lookup

for b in llama-bench llama-quantize llama-cli llama-lookup; do
  [ -x "$out/bin/$b" ] || { echo "build finished without $out/bin/$b" >&2; exit 1; }
done
echo "bitnet.cpp built: $out/bin (use --bitnet-cpp $out/bin or BITNET_CPP_DIR=$out/bin)"
