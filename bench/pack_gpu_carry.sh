#!/usr/bin/env bash
# Packs what the GPU machine needs into .gpu_carry/{bin,lib} (git-ignored; name it in the device
# tool's `carry`): the GPU binaries of a CUDA build and the non-system shared libraries they load
# (Ubuntu 24.04 there has other sonames for fmt/spdlog/xxhash than Debian 12 here).
# The property-suite binaries (props_*) run on the GPU with RCSIM_PROPERTY_BACKEND=gpu (issue 14:
# scripts/gpu_testbed_run.sh); they link Debian's static RapidCheck, so nothing else travels.
# Usage: bench/pack_gpu_carry.sh [BUILD_DIR]   (default build-cuda)
#        PACK_TAR=1 bench/pack_gpu_carry.sh build-gpu90: bin/ and lib/ as one .gpu_carry/carry.tar.gz
#        (the device tool carries at most 64 MiB; scripts/gpu_testbed_run.sh unpacks it)
set -euo pipefail
build=${1:-build-cuda}
out=.gpu_carry
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
for b in ${PACK_BINARIES:-gpu_backend_test gpu_faulty_kernels_test gpu_bench rcsim props_numeric props_fp8 \
         props_restore props_dispatch props_state_model props_field}; do
  [ -x "$build/bin/$b" ] && cp "$build/bin/$b" "$out/bin/"
done
for b in "$out"/bin/*; do
  ldd "$b" | awk '/=> \// {print $3}' | grep -E 'lib(fmt|spdlog|xxhash|gtest|gmock|rapidcheck)' || true
done | sort -u | while read -r lib; do cp -L "$lib" "$out/lib/"; done
# Symbols and debug info stay here (build dir): the device tool carries at most 64 MiB.
strip --strip-all "$out"/bin/*
if [ "${PACK_TAR:-0}" = 1 ]; then
  tar -C "$out" -czf "$out/carry.tar.gz" bin lib
  rm -rf "$out/bin" "$out/lib"
fi
du -sh "$out"
