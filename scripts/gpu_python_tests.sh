#!/usr/bin/env bash
# Builds rcsim's Python module with the GPU backend and runs the pytest suite (python/tests and
# examples/python) on PyTorch CUDA tensors, on a machine with nvcc, g++, PyTorch with CUDA and
# NumPy but none of Debian's packages (no CMake project configure, no pybind11 package, no
# network). First run scripts/carry_python_deps.sh on the Debian machine and carry `.gpu_deps`.
#
#   scripts/gpu_python_tests.sh          build with nvcc (sm_90), run the suite with
#                                        --rcsim-device cuda, then once more on CPU tensors
#   scripts/gpu_python_tests.sh cpu      the same direct build without the GPU backend, and the
#                                        CPU run only (checks this script on any machine)
# Env: PYTHON (default python3), RCSIM_CUDA_ARCH (default 90), OUT (a log copy goes there).
# Python.h of that interpreter must exist (its pythonX.Y-dev); pybind11's headers come from
# .gpu_deps (Debian's pybind11-dev) or, when those are absent, from PyTorch's bundled copy.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-cuda}
py=${PYTHON:-python3}
deps=$PWD/.gpu_deps
build=$PWD/build-python-direct
arch=${RCSIM_CUDA_ARCH:-90}
jobs=$(nproc)
log() { printf 'gpu_python_tests: %s\n' "$*"; }

pyinc=$($py -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
ext=$($py -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
[[ -f $pyinc/Python.h ]] || { log "no Python.h in $pyinc: install the dev headers of $py"; exit 2; }
if [[ -f $deps/root/usr/include/pybind11/pybind11.h ]]; then
  pybind_inc=$deps/root/usr/include
else
  pybind_inc=$($py -c 'import os, torch; print(os.path.dirname(torch.__file__) + "/include")')
  if [[ ! -f $pybind_inc/pybind11/pybind11.h ]]; then
    log "no pybind11 headers (run scripts/carry_python_deps.sh)"
    exit 2
  fi
fi
if [[ ! -f $deps/lib/libspdlog.so.1.10 ]]; then
  log "no .gpu_deps/lib (run scripts/carry_python_deps.sh)"
  exit 2
fi
log "python $($py -c 'import sys; print(sys.version.split()[0])'), headers $pyinc," \
  "pybind11 from $pybind_inc, mode $mode"

gpu=0
[[ $mode == cuda ]] && gpu=1
rm -rf "$build" && mkdir -p "$build/obj" "$build/python/rcsim"
cxxflags=(-std=c++20 -O2 -fPIC -fvisibility=hidden -ffp-contract=off -DNDEBUG -DSPDLOG_COMPILED_LIB
          -DSPDLOG_FMT_EXTERNAL -DSPDLOG_SHARED_LIB -DFMT_SHARED -DRCSIM_PYTHON_GPU=$gpu -I"$PWD"
          -isystem "$deps/root/usr/include" -isystem "$pyinc" -isystem "$pybind_inc")
# The libraries the CMake target links (python/CMakeLists.txt), by folder. Not
# core/mutant_from_env.cc: that object (rcsim_mutant_from_env, test binaries only) would activate
# $RCSIM_MUTANT when the module loads.
sources=(core/*.cc core/dispatch/*.cc kernels/cpu/*.cc fault_injection/plan/*.cc fakes/faults/*.cc
         python/bindings/*.cc)
for i in "${!sources[@]}"; do
  if [[ ${sources[$i]} == core/mutant_from_env.cc ]]; then unset 'sources[i]'; fi
done
sources=("${sources[@]}")
link_extra=()
nvcc_pids=()
if ((gpu)); then
  nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  cuda_root=$(dirname "$(dirname "$nvcc")")
  sources+=(kernels/hip/gpu_backend.cc)
  cxxflags+=(-isystem "$cuda_root/include")
  for src in kernels/hip/*.hip; do  # the same flags as kernels/hip/CMakeLists.txt
    "$nvcc" -x cu -std=c++20 -O3 -fmad=false -prec-div=true -prec-sqrt=true \
      --expt-relaxed-constexpr -Xcompiler=-fPIC -gencode=arch=compute_$arch,code=sm_$arch \
      -I"$PWD" -c "$src" -o "$build/obj/$(basename "$src" .hip).o" &
    nvcc_pids+=($!)
  done
  link_extra=("$cuda_root/lib64/libcudart_static.a" -ldl -lrt -lpthread)
fi
printf '%s\n' "${sources[@]}" | xargs -P "$jobs" -I{} sh -c \
  'g++ "$@" -c {} -o "'"$build"'/obj/$(echo {} | tr / _).o"' _ "${cxxflags[@]}"
for pid in "${nvcc_pids[@]}"; do wait "$pid" || { log "nvcc failed"; exit 1; }; done
g++ -shared -o "$build/python/rcsim/_rcsim$ext" "$build"/obj/*.o "$deps/lib/libspdlog.so.1.10" \
  "$deps/lib/libfmt.so.9" "${link_extra[@]}" -Wl,-rpath,"$deps/lib"
cp python/rcsim/*.py "$build/python/rcsim/"

pypath=$build/python
if ! $py -c 'import pytest' 2>/dev/null; then
  pypath=$pypath:$deps/root/usr/lib/python3/dist-packages
  log "pytest from .gpu_deps (Debian's python3-pytest)"
fi
run() {
  PYTHONPATH=$pypath PYTHONDONTWRITEBYTECODE=1 $py -m pytest -q -p no:cacheprovider \
    -p rcsim.pytest_plugin python/tests examples/python "$@"
}
status=0
if ((gpu)); then
  $py -c 'import torch; assert torch.cuda.is_available(), "PyTorch sees no CUDA device"'
  log "suite on CUDA tensors"
  run --rcsim-device cuda -rs 2>&1 | tee "$build/pytest_cuda.log" || status=1
fi
log "suite on CPU tensors"
run --rcsim-device cpu 2>&1 | tee "$build/pytest_cpu.log" || status=1
[[ -n ${OUT:-} ]] && cp "$build"/pytest_*.log "$OUT/" 2>/dev/null || true
exit $status
