#include "fault_injection/cli/cli_args.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "core/check.h"

namespace rcsim::cli {
namespace {

bool all_blank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\n') return false;
  }
  return true;
}

}  // namespace

int64_t parse_int_arg(std::string_view what, std::string_view text, int64_t lo, int64_t hi) {
  RCSIM_REQUIRE(!text.empty(), "{}: empty value (expected a whole number in [{}, {}])", what, lo,
                hi);
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  RCSIM_REQUIRE(ec != std::errc::result_out_of_range,
                "{}: '{}' does not fit a 64-bit integer (expected a whole number in [{}, {}])",
                what, text, lo, hi);
  RCSIM_REQUIRE(ec == std::errc() && ptr == text.data() + text.size(),
                "{}: '{}' is not a whole number (expected one in [{}, {}])", what, text, lo, hi);
  RCSIM_REQUIRE(v >= lo && v <= hi, "{}: {} is out of range (expected a whole number in [{}, {}])",
                what, v, lo, hi);
  return v;
}

uint64_t parse_u64_arg(std::string_view what, std::string_view text) {
  RCSIM_REQUIRE(!text.empty(), "{}: empty value (expected a whole number in [0, 2^64-1])", what);
  RCSIM_REQUIRE(text.front() != '-' && text.front() != '+',
                "{}: '{}' has a sign (expected a whole number in [0, 2^64-1])", what, text);
  int base = 10;
  std::string_view digits = text;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  RCSIM_REQUIRE(ec != std::errc::result_out_of_range,
                "{}: '{}' is larger than 2^64-1 = 18446744073709551615", what, text);
  RCSIM_REQUIRE(ec == std::errc() && ptr == digits.data() + digits.size(),
                "{}: '{}' is not a whole number (expected one in [0, 2^64-1], decimal or 0x-hex)",
                what, text);
  return v;
}

SeedRange parse_seed_range(std::string_view what, std::string_view text, uint64_t count_max) {
  const auto colon = text.find(':');
  RCSIM_REQUIRE(colon != std::string_view::npos, "{}: '{}' is not A:B (an inclusive seed range)",
                what, text);
  SeedRange r;
  r.first = parse_u64_arg(fmt::format("{} (first seed)", what), text.substr(0, colon));
  r.last = parse_u64_arg(fmt::format("{} (last seed)", what), text.substr(colon + 1));
  RCSIM_REQUIRE(r.first <= r.last, "{}: '{}' is empty (A:B needs A <= B)", what, text);
  RCSIM_REQUIRE(r.last - r.first < count_max, "{}: '{}' has {} seeds, more than the limit {}",
                what, text, r.last - r.first == UINT64_MAX ? r.last - r.first : r.last - r.first + 1,
                count_max);
  return r;
}

Shard parse_shard(std::string_view what, std::string_view text, int64_t count_max) {
  const auto slash = text.find('/');
  RCSIM_REQUIRE(slash != std::string_view::npos, "{}: '{}' is not i/n (shard i of n)", what, text);
  Shard s;
  s.count = parse_int_arg(fmt::format("{} (n)", what), text.substr(slash + 1), 1, count_max);
  s.index = parse_int_arg(fmt::format("{} (i)", what), text.substr(0, slash), 0, s.count - 1);
  return s;
}

double parse_duration_seconds(std::string_view what, std::string_view text, double seconds_max) {
  RCSIM_REQUIRE(!text.empty(), "{}: empty value (expected a duration like 90s, 5m or 1h)", what);
  double mult = 1;
  std::string_view num = text;
  const char unit = text.back();
  if (unit == 's' || unit == 'm' || unit == 'h') {
    mult = unit == 's' ? 1 : unit == 'm' ? 60 : 3600;
    num.remove_suffix(1);
  }
  double v = 0;
  const auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
  RCSIM_REQUIRE(!num.empty() && ec == std::errc() && ptr == num.data() + num.size() &&
                    std::isfinite(v),
                "{}: '{}' is not a duration like 90s, 5m or 1h", what, text);
  RCSIM_REQUIRE(v > 0, "{}: '{}' must be positive", what, text);
  RCSIM_REQUIRE(v * mult <= seconds_max, "{}: '{}' is longer than the limit of {:g} s", what, text,
                seconds_max);
  return v * mult;
}

std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || all_blank(v)) return std::nullopt;
  return std::string(v);
}

void check_output_file(std::string_view what, const std::string& path) {
  namespace fs = std::filesystem;
  RCSIM_REQUIRE(!path.empty(), "{}: empty path", what);
  const fs::path p(path);
  std::error_code ec;
  RCSIM_REQUIRE(!fs::is_directory(p, ec), "{}: '{}' is a directory", what, path);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  RCSIM_REQUIRE(fs::is_directory(dir, ec), "{}: directory '{}' does not exist", what, dir.string());
  RCSIM_REQUIRE(access(dir.c_str(), W_OK) == 0, "{}: directory '{}' is not writable", what,
                dir.string());
  if (fs::exists(p, ec)) {
    RCSIM_REQUIRE(access(p.c_str(), W_OK) == 0, "{}: '{}' exists and is not writable", what, path);
  }
}

void check_output_dir(std::string_view what, const std::string& path) {
  namespace fs = std::filesystem;
  RCSIM_REQUIRE(!path.empty(), "{}: empty path", what);
  std::error_code ec;
  fs::path existing = fs::absolute(fs::path(path), ec).lexically_normal();
  RCSIM_REQUIRE(!ec, "{}: '{}': {}", what, path, ec.message());
  // Walk up to the nearest path that exists; the loop is bounded by the path's depth.
  while (!fs::exists(existing, ec) && existing.has_parent_path() &&
         existing.parent_path() != existing) {
    existing = existing.parent_path();
  }
  RCSIM_REQUIRE(fs::is_directory(existing, ec), "{}: '{}' is not a directory{}", what,
                existing.string(),
                existing == fs::absolute(fs::path(path)).lexically_normal()
                    ? ""
                    : fmt::format(" (so '{}' cannot be created)", path));
  RCSIM_REQUIRE(access(existing.c_str(), W_OK) == 0, "{}: directory '{}' is not writable", what,
                existing.string());
}

}  // namespace rcsim::cli
