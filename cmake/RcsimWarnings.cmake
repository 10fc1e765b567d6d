# Strict warnings for every rcsim target; -Werror in CI through RCSIM_WERROR.
add_library(rcsim_warnings INTERFACE)
target_compile_options(rcsim_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion>
  $<$<AND:$<BOOL:${RCSIM_WERROR}>,$<COMPILE_LANGUAGE:CXX>>:-Werror>)
# The reference kernels must not let the compiler contract a*b+c into an FMA: the
# spec rounds after every multiply, and the GPU kernels are held to the same bits.
add_library(rcsim_strict_fp INTERFACE)
target_compile_options(rcsim_strict_fp INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-ffp-contract=off>)
