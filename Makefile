# The two commands of a fresh Debian 12 machine:
#   make run    install what is missing, build, run the default simulation campaign (CPU backend)
#   make test   install what is missing, build, run the whole test suite through CTest
# Other targets: make build, make asan (asan-ubsan preset tests), make tsan, make hip-amd, make cuda,
# make hip-amd-kernels (the AMD device objects only).
JOBS ?= $(shell nproc)
BUILD_DIR := build
CTEST_ARGS ?=

.PHONY: all deps build run test asan tsan fuzz-smoke hip-amd hip-amd-kernels cuda clean

all: build

deps:
	@scripts/install_deps.sh

$(BUILD_DIR)/build.ninja: CMakeLists.txt CMakePresets.json | deps
	@cmake --preset default >/dev/null

build: deps $(BUILD_DIR)/build.ninja
	@cmake --build --preset default -j $(JOBS)

run: build
	@scripts/run_main_job.sh

test: build
	@ctest --preset default -j $(JOBS) $(CTEST_ARGS)

# ASan + UBSan over the unit, fault and property tests (fewer property cases), then a short
# campaign whose exit also fails on any leak (LeakSanitizer is part of ASan on Linux).
# The preset compiles with clang at -O0: ASan instruments every access at any level, and the build
# is several times faster (same machine and hour, dispatcher_policy_test.cc: GCC -O1 45 s, GCC -O0
# 19 s, clang -O0 9.6 s; the whole build 506 s of compile CPU with clang -O0, 758 s with GCC -O0)
# for a test run that grows from about 45 s to 2.5 min. It also puts a second compiler's warnings
# (-Werror) on every source, and clang's UBSan checks more kinds than GCC's. UBSan's object-size
# check sees less without optimisation; ASan catches those out-of-bounds accesses itself.
asan: deps
	@cmake --preset asan-ubsan >/dev/null && cmake --build --preset asan-ubsan -j $(JOBS)
	@ctest --preset asan-ubsan -j $(JOBS)
	@ASAN_OPTIONS=detect_leaks=1 build-asan-ubsan/bin/rcsim campaign --seeds 0:39 --budget 5m \
	  --no-coverage-gate --report build-asan-ubsan/leak_campaign.json

# Only the concurrency tests run under TSan, so only their targets are built.
TSAN_TARGETS ?= dispatch_concurrency_test
tsan: deps
	@cmake --preset tsan >/dev/null && cmake --build --preset tsan -j $(JOBS) --target $(TSAN_TARGETS)
	@ctest --preset tsan -j $(JOBS)

fuzz-smoke: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS) --target fuzz_fault_spec fuzz_npy fuzz_replay_token
	@scripts/fuzz_smoke.sh

# The GPU presets build the GPU backend, its harness, the gpu tests and the benchmark: the host
# parts are already covered by the default build, so CI does not compile them a second time.
# rcsim_sim and rcsim_props_support hold the GPU-only host code of issue 14 (the GPU SimDevice, the
# property suites' GPU backend): compiled here so CI checks it in both GPU presets.
GPU_TARGETS ?= rcsim_kernels_gpu rcsim_gpu_harness gpu_backend_test gpu_faulty_kernels_test gpu_bench \
               rcsim_sim rcsim_props_support
# CCACHE=1 compiles the host sources of the GPU presets through ccache, with the cache in
# build-ccache/ of this checkout. Both presets compile the same host sources with the same compiler
# and flags, so CI builds `cuda` beside `hip-amd-kernels` (the hipcc device objects: the stage's
# longest compiles, one process for both architectures), and then `hip-amd`, whose host objects
# come from the cache. The build dirs are siblings, so with BASEDIR and NOHASHDIR their commands
# hash the same; a hit's debug info names the other build dir, which nothing reads.
CCACHE ?=
GPU_LAUNCHER = $(if $(filter 1,$(CCACHE)),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache,-UCMAKE_CXX_COMPILER_LAUNCHER)
GPU_BUILD_ENV = $(if $(filter 1,$(CCACHE)),CCACHE_DIR='$(CURDIR)/build-ccache' CCACHE_BASEDIR='$(CURDIR)' CCACHE_NOHASHDIR=true)
# The hip-amd preset, configured and built for the targets given as $(1).
hip_amd_build = scripts/install_deps.sh --hip && cmake --preset hip-amd $(GPU_LAUNCHER) >/dev/null && \
  $(GPU_BUILD_ENV) cmake --build --preset hip-amd -j $(JOBS) --target $(1)
hip-amd:
	@$(call hip_amd_build,$(GPU_TARGETS))
hip-amd-kernels:
	@$(call hip_amd_build,rcsim_gpu_objects)

# CUDA_ARCHS (e.g. 90, or '90;80') replaces the preset's architectures (RCSIM_CUDA_ARCHS, sm_90 and
# sm_80); without it the build dir's cached value is dropped (-U), so a plain `make cuda` after
# `make cuda CUDA_ARCHS=90` builds both again. CI passes 90, the architecture the GPU tests run
# on: the fused kernel's file is the longest compile of the stage, once per architecture, and the
# paths that sm_80 alone would check (no packed e4m3 convert, no L2 bulk prefetch) are the ones
# the AMD build compiles too.
CUDA_ARCHS ?=
cuda: deps
	@cmake --preset cuda $(if $(CUDA_ARCHS),-DRCSIM_CUDA_ARCHS='$(CUDA_ARCHS)',-URCSIM_CUDA_ARCHS) \
	  $(GPU_LAUNCHER) >/dev/null && \
	  $(GPU_BUILD_ENV) cmake --build --preset cuda -j $(JOBS) --target $(GPU_TARGETS)

clean:
	rm -rf build build-*
