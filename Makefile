# The two commands of a fresh Debian 12 machine:
#   make run    install what is missing, build, run the default simulation campaign (CPU backend)
#   make test   install what is missing, build, run the whole test suite through CTest
# Other targets: make build, make asan (asan-ubsan preset tests), make tsan, make hip-amd, make cuda.
JOBS ?= $(shell nproc)
BUILD_DIR := build
CTEST_ARGS ?=

.PHONY: all deps build run test asan tsan fuzz-smoke hip-amd cuda clean

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

asan: deps
	@cmake --preset asan-ubsan >/dev/null && cmake --build --preset asan-ubsan -j $(JOBS)
	@ctest --preset asan-ubsan -j $(JOBS)

# Only the concurrency tests run under TSan, so only their targets are built.
TSAN_TARGETS ?= dispatch_concurrency_test
tsan: deps
	@cmake --preset tsan >/dev/null && cmake --build --preset tsan -j $(JOBS) --target $(TSAN_TARGETS)
	@ctest --preset tsan -j $(JOBS)

fuzz-smoke: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS) --target fuzz_fault_spec fuzz_npy fuzz_replay_token
	@scripts/fuzz_smoke.sh

hip-amd:
	@scripts/install_deps.sh --hip
	@cmake --preset hip-amd >/dev/null && cmake --build --preset hip-amd -j $(JOBS)

cuda: deps
	@cmake --preset cuda >/dev/null && cmake --build --preset cuda -j $(JOBS)

clean:
	rm -rf build build-*
