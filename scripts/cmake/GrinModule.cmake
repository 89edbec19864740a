# grin_module(<target> [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# A static library from every *.cc in the current directory except *_test.cc and main.cc.
# Includes are rooted at the repository root: #include "engine/base/status.h".
function(grin_module target)
  cmake_parse_arguments(ARG "" "" "PUBLIC_DEPS;PRIVATE_DEPS;EXTRA_SOURCES" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  list(FILTER srcs EXCLUDE REGEX "(_test|/main)\\.cc$")
  add_library(${target} STATIC ${srcs} ${ARG_EXTRA_SOURCES})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS} grin_warnings)
endfunction()
