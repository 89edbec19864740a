# grin_warnings: linked PRIVATE by every target of ours. Imported targets' headers are system
# headers, so third-party code does not trip -Werror.
option(GRIN_WERROR "Treat warnings as errors" ON)
add_library(grin_warnings INTERFACE)
target_compile_options(grin_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
  -Wnon-virtual-dtor -Wno-missing-field-initializers $<$<BOOL:${GRIN_WERROR}>:-Werror>
  # GCC 12 reports false maybe-uninitialized / restrict warnings inside libstdc++ (std::regex via
  # cxxopts, std::string copies) once sanitizer instrumentation or -O2 inlining changes the flow
  # analysis. They stay warnings everywhere, but never fail the build.
  -Wno-error=maybe-uninitialized -Wno-error=restrict)
