// Linked (as an object library) into the test binaries that the shared-math mutants must make
// fail: at start-up it activates the mutant named by the environment variable RCSIM_MUTANT and
// says so on stderr, so CTest can run an unchanged test binary under a planted bug
// (independent_reference/CMakeLists.txt) and expect it to fail. An unknown name aborts: a typo
// must not turn into a silent "no mutant" run that fails for another reason.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/mutants.h"

namespace rcsim {
namespace {

bool apply_mutant_from_env() {
  const char* name = std::getenv("RCSIM_MUTANT");
  if (name == nullptr || *name == '\0') return false;
  const std::optional<Mutant> m = mutant_from_name(name);
  if (!m) {
    std::fprintf(stderr, "RCSIM_MUTANT=%s: unknown mutant (core/mutants.cc lists them)\n", name);
    std::abort();
  }
  set_active_mutant(*m);
  std::fprintf(stderr, "RCSIM_MUTANT=%s active: this run is expected to fail\n", name);
  return true;
}

[[maybe_unused]] const bool g_mutant_from_env = apply_mutant_from_env();

}  // namespace
}  // namespace rcsim
