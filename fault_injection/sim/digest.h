// The run digest: XXH3-64 over everything a run produces (outputs, dispatch records, attention
// reads, log lines, final caches). Two runs of one config must print the same digest; the
// campaign's determinism self-check compares it, and `campaign --cross-backend` compares it
// across backends: computed outputs are hashed with their NaNs canonicalised (core/nan_class.h),
// because a NaN's sign and payload are the backend's, not the kernel contract's.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <xxhash.h>

#include "core/check.h"
#include "core/nan_class.h"
#include "core/tensor.h"

namespace rcsim::sim {

class Digest {
 public:
  Digest() : state_(XXH3_createState()) {
    RCSIM_ASSERT(state_ != nullptr, "XXH3_createState failed");
    XXH3_64bits_reset(state_);
  }
  ~Digest() { XXH3_freeState(state_); }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void bytes(const void* data, std::size_t size) {
    XXH3_64bits_update(state_, data, size);
    if (trace_enabled()) {
      std::fprintf(stderr, "DIGEST_TRACE %lld bytes=%zu running=%016llx\n",
                   static_cast<long long>(updates_), size,
                   static_cast<unsigned long long>(XXH3_64bits_digest(state_)));
    }
    ++updates_;
  }
  template <typename T>
    requires std::is_integral_v<T> || std::is_enum_v<T>
  void value(T v) {
    const auto wide = static_cast<uint64_t>(v);
    bytes(&wide, sizeof wide);
  }
  void text(std::string_view s) {
    value(s.size());
    bytes(s.data(), s.size());
  }
  // The elements of a host view (any strides) in index order; under NanRule::kNanClass (a
  // computed output: q/k heads, the K cache, fp8 codes) every NaN is first replaced by its
  // dtype's canonical pattern, so one seed hashes the same on the CPU and on a GPU.
  void elements(const TensorView& v, NanRule rule) {
    if (v.is_null()) return;
    HostTensor copy = contiguous_copy(v);
    const std::span<std::byte> raw(copy.data(), static_cast<std::size_t>(copy.bytes()));
    if (rule == NanRule::kNanClass) canonicalise_nans(v.dtype, raw);
    if (trace_dir() != nullptr) dump("digest_" + std::to_string(updates_), raw);  // as hashed
    bytes(raw.data(), raw.size());
  }
  uint64_t result() const { return XXH3_64bits_digest(state_); }

  // Under RCSIM_DIGEST_DUMP=DIR only: writes a view's elements to DIR/<name>.bin, hashing nothing.
  static void dump_only(const char* name, const TensorView& v) {
    if (trace_dir() == nullptr || v.is_null()) return;
    const HostTensor copy = contiguous_copy(v);
    dump(name, std::span<const std::byte>(copy.data(), static_cast<std::size_t>(copy.bytes())));
  }

  // RCSIM_DIGEST_TRACE=1: every update prints its size and the running digest to stderr, so two
  // runs whose digests differ (a CPU and a GPU replay of one token) can be diffed to the first
  // differing update; RCSIM_DIGEST_DUMP=DIR also writes each hashed buffer to
  // DIR/digest_<update>.bin. Debugging aids; they change no digest.
  static const char* trace_dir() {
    static const char* dir = std::getenv("RCSIM_DIGEST_DUMP");
    return dir != nullptr && *dir != '\0' ? dir : nullptr;
  }
  static bool trace_enabled() {
    static const bool on = [] {
      const char* v = std::getenv("RCSIM_DIGEST_TRACE");
      return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
    }();
    return on;
  }

 private:
  // The elements of a host view (any strides) in index order, contiguous.
  static HostTensor contiguous_copy(const TensorView& v) {
    std::vector<int64_t> shape(static_cast<std::size_t>(v.rank));
    for (int d = 0; d < v.rank; ++d) shape[static_cast<std::size_t>(d)] = v.size(d);
    HostTensor copy(v.dtype, std::move(shape));
    copy_view(v, copy.view());
    return copy;
  }
  // RCSIM_DIGEST_DUMP=DIR: writes DIR/<name>.bin; nothing without the variable.
  static void dump(const std::string& name, std::span<const std::byte> raw) {
    if (trace_dir() == nullptr) return;
    const std::string path = std::string(trace_dir()) + "/" + name + ".bin";
    if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
      std::fwrite(raw.data(), 1, raw.size(), f);
      std::fclose(f);
    }
  }

  XXH3_state_t* state_;
  int64_t updates_ = 0;
};

}  // namespace rcsim::sim
