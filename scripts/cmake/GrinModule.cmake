# grin_module(<target> [PUBLIC_DEPS ...] [PRIVATE_DEPS ...] [EXCLUDE_SOURCES ...])
# A static library from every *.cc in the current directory except *_test.cc, main.cc and
# EXCLUDE_SOURCES (names relative to the directory).
# Includes are rooted at the repository root: #include "engine/base/status.h".
function(grin_module target)
  cmake_parse_arguments(ARG "" "" "PUBLIC_DEPS;PRIVATE_DEPS;EXTRA_SOURCES;EXCLUDE_SOURCES" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  list(FILTER srcs EXCLUDE REGEX "(_test|/main)\\.cc$")
  foreach(x IN LISTS ARG_EXCLUDE_SOURCES)
    list(REMOVE_ITEM srcs ${CMAKE_CURRENT_SOURCE_DIR}/${x})
  endforeach()
  add_library(${target} STATIC ${srcs} ${ARG_EXTRA_SOURCES})
  # The installed package (cmake/Install.cmake) exports these targets: the source tree is only
  # the build's include root.
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS} grin_warnings)
endfunction()
