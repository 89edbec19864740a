# cmake --install: the grin_jobs library (include/grin_jobs/) for programs that embed a sync.
#   <prefix>/include/grin_jobs/*.h                 the public headers
#   <prefix>/include/grin_jobs/internal/engine/base/{status,result}.h   what they include
#   <prefix>/lib/libgrin_*.a                        grin_jobs and the static modules it links
#   <prefix>/lib/cmake/GrinJobs/                    find_package(GrinJobs): GrinJobs::grin_jobs
#   <prefix>/lib/pkgconfig/grin-jobs.pc             pkg-config --cflags --libs grin-jobs
# The binary (bin/grin-jobs) and the .deb are cmake/Package.cmake's.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(GRIN_JOBS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/GrinJobs)
# Every static library grin_jobs links, in link order (a user of the .a files needs them all).
set(GRIN_JOBS_EXPORTED grin_jobs grin_pipeline grin_s3 grin_grinclient grin_storage grin_schema
    grin_engine grin_archive grin_net grin_base)
if(TARGET grin_storage_postgres)  # PostgreSQL runs (cli/state_factory.h): libpq
  list(INSERT GRIN_JOBS_EXPORTED 5 grin_storage_postgres)
  set(GRIN_JOBS_WITH_PQ ON)
else()
  set(GRIN_JOBS_WITH_PQ OFF)
endif()

target_include_directories(grin_jobs PUBLIC
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/grin_jobs/internal>)

install(TARGETS ${GRIN_JOBS_EXPORTED} grin_warnings EXPORT GrinJobsTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/grin_jobs
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_SOURCE_DIR}/engine/base/status.h ${PROJECT_SOURCE_DIR}/engine/base/result.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/grin_jobs/internal/engine/base)
install(EXPORT GrinJobsTargets NAMESPACE GrinJobs:: DESTINATION ${GRIN_JOBS_CMAKE_DIR})

# The package config finds what the static libraries link (find_dependency), then the targets.
# libisal is optional (engine/archive): the package needs it when grin_archive was built with it.
get_target_property(grin_archive_links grin_archive LINK_LIBRARIES)
if("PkgConfig::ISAL" IN_LIST grin_archive_links)
  set(GRIN_JOBS_WITH_ISAL ON)
else()
  set(GRIN_JOBS_WITH_ISAL OFF)
endif()
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/GrinJobsConfig.cmake.in
  ${PROJECT_BINARY_DIR}/GrinJobsConfig.cmake INSTALL_DESTINATION ${GRIN_JOBS_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/GrinJobsConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/GrinJobsConfig.cmake
  ${PROJECT_BINARY_DIR}/GrinJobsConfigVersion.cmake DESTINATION ${GRIN_JOBS_CMAKE_DIR})

# pkg-config: the libraries in link order; their dependencies through Requires (all static).
set(GRIN_JOBS_PC_LIBS "")
foreach(t IN LISTS GRIN_JOBS_EXPORTED)
  string(APPEND GRIN_JOBS_PC_LIBS " -l${t}")
endforeach()
set(GRIN_JOBS_PC_REQUIRES "libcurl, openssl, sqlite3, zlib, libarchive, libxml-2.0, librnp")
if(GRIN_JOBS_WITH_ISAL)
  string(APPEND GRIN_JOBS_PC_REQUIRES ", libisal")
endif()
if(GRIN_JOBS_WITH_PQ)
  string(APPEND GRIN_JOBS_PC_REQUIRES ", libpq")
endif()
# Relocatable: the prefix is found from the .pc file's own place (cmake --install --prefix P).
file(RELATIVE_PATH GRIN_JOBS_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" GRIN_JOBS_PC_TO_PREFIX "${GRIN_JOBS_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/grin-jobs.pc.in ${PROJECT_BINARY_DIR}/grin-jobs.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/grin-jobs.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
