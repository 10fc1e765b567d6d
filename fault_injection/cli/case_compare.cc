// Compares two case output directories file by file (case_compare.h).
#include "fault_injection/cli/case_compare.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "core/io/npy.h"
#include "core/nan_class.h"

namespace rcsim::cli {
namespace {

namespace fs = std::filesystem;

// The rule element `i` of output `name` compares by: the V heads of qkv and a bf16/fp16 V cache
// are copies (bit for bit, NaN payloads included), everything else is computed (NaN class).
NanRule element_rule(const AttentionConfig& c, const std::string& name, int64_t i, int64_t row) {
  const int64_t qk_heads = c.num_heads_q + c.num_heads_kv;
  if (name == "qkv" && (i % row) / c.head_dim >= qk_heads) return NanRule::kBitExact;
  if (name == "v_cache" && !is_fp8(c.kv_cache_dtype)) return NanRule::kBitExact;
  return NanRule::kNanClass;
}

// The first difference between one output file of the two runs, or nullopt when equal. Per-token
// outputs name the (token, head, dim) of the first bad element.
std::optional<std::string> compare_one_output(const AttentionConfig& c, const fs::path& out_dir,
                                              const fs::path& other_dir, const std::string& name,
                                              DType dtype) {
  const fs::path other = other_dir / (name + ".npy");
  if (!fs::exists(other)) return fmt::format("{} is missing", other.string());
  const HostTensor mine = io::read_npy(out_dir / (name + ".npy"), dtype);
  const HostTensor theirs = io::read_npy(other, dtype);
  if (mine.shape() != theirs.shape()) return fmt::format("{}: shapes differ", name);
  const int64_t esize = dtype_size_bytes(dtype);
  const int64_t row =
      mine.shape().empty() ? 1 : mine.numel() / std::max<int64_t>(1, mine.shape()[0]);
  for (int64_t i = 0; i < mine.numel(); ++i) {
    uint64_t a = 0, b = 0;
    std::memcpy(&a, mine.data() + i * esize, static_cast<std::size_t>(esize));
    std::memcpy(&b, theirs.data() + i * esize, static_cast<std::size_t>(esize));
    if (element_bits_equal(dtype, a, b, element_rule(c, name, i, row))) continue;
    if (name == "qkv" || name == "q" || name == "k") {
      const int64_t d = c.head_dim;
      return fmt::format("{} differs at (token {}, head {}, dim {}): 0x{:x} vs 0x{:x}", name,
                         i / row, (i % row) / d, i % d, a, b);
    }
    return fmt::format("{} differs at element {}: 0x{:x} vs 0x{:x}", name, i, a, b);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> compare_case_outputs(const AttentionConfig& c, const fs::path& out_dir,
                                                const fs::path& other_dir,
                                                const CaseOutputFiles& outputs) {
  for (const auto& [name, dtype] : outputs) {
    if (auto d = compare_one_output(c, out_dir, other_dir, name, dtype)) return d;
  }
  return std::nullopt;
}

}  // namespace rcsim::cli
