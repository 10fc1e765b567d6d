// Strict parsing of the CLI's option values. Every numeric option goes through these, so each
// rejects the same way: not a whole number, a sign where none is allowed, out of its range, or
// too large for its type, with a message that names the option (or the environment variable)
// and the range. Output paths are checked before any work starts, so a bad --report fails at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rcsim::cli {

// A signed whole number in [lo, hi]. `what` names the source ("--layers", "RCSIM_...").
int64_t parse_int_arg(std::string_view what, std::string_view text, int64_t lo, int64_t hi);
// An unsigned whole number (a seed): no sign at all, at most 2^64 - 1; decimal or 0x-hex.
uint64_t parse_u64_arg(std::string_view what, std::string_view text);

struct SeedRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
};
// "A:B" with A <= B and at most `count_max` seeds.
SeedRange parse_seed_range(std::string_view what, std::string_view text, uint64_t count_max);

struct Shard {
  int64_t index = 0;
  int64_t count = 1;
};
// "i/n" with 0 <= i < n <= count_max.
Shard parse_shard(std::string_view what, std::string_view text, int64_t count_max);

// "90s", "5m", "2h" or "30" (seconds): finite, > 0, at most `seconds_max`.
double parse_duration_seconds(std::string_view what, std::string_view text, double seconds_max);

// The value of an environment variable, or nullopt when unset or blank (blank = unset, so
// `RCSIM_FAULTS= rcsim run` behaves like no variable at all).
std::optional<std::string> env_value(const char* name);

// A file the command will write: its directory must exist and be writable, and the path must not
// be a directory or an unwritable file. Checked before any work; nothing is created.
void check_output_file(std::string_view what, const std::string& path);

// A directory the command will create (with its parents) or write into: the path must not be an
// existing file, and its nearest existing ancestor must be a writable directory (a file anywhere on
// the way, e.g. --out a.json/dir, is refused). Checked before any work; nothing is created.
void check_output_dir(std::string_view what, const std::string& path);

}  // namespace rcsim::cli
