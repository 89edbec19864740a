# The grin-jobs Debian package: install() rules for the program, its man pages and its bash
# completion (install component `grin-jobs`), and CPack's DEB generator packaging that component
# only (the library, headers and CMake package of cmake/Install.cmake are not in the .deb).
#   scripts/package DIR      builds the .deb into DIR
#   tests/package/deb_test   unpacks it into a scratch root and runs what it installed
# Build targets (in `all`): grin-jobs-man (cli/man/gen-man: one page for grin-jobs and one per
# command, from their --help through Debian's help2man) and grin-jobs-completion
# (cli/completion/gen-completion: commands, options and sub-command words from the same help).
# Both rerun whenever the binary changes, so neither can fall behind the program.
include(GNUInstallDirs)

# cpack (and `ninja install`) first build the `preinstall` target, which is `all` by default: a
# whole test and benchmark build to package one program. scripts/package builds what the
# package holds (grin-jobs, grin-jobs-man, grin-jobs-completion) and cpack then only installs.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS grin-jobs RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT grin-jobs)

set(GRIN_MAN_DIR ${PROJECT_BINARY_DIR}/man)
find_program(GRIN_HELP2MAN help2man)
if(GRIN_HELP2MAN)
  add_custom_command(OUTPUT ${GRIN_MAN_DIR}/grin-jobs.1.gz
    COMMAND ${PROJECT_SOURCE_DIR}/cli/man/gen-man $<TARGET_FILE:grin-jobs> ${PROJECT_VERSION}
            ${GRIN_MAN_DIR}
    DEPENDS grin-jobs ${PROJECT_SOURCE_DIR}/cli/man/gen-man
    COMMENT "Man pages from grin-jobs --help (help2man)" VERBATIM)
  add_custom_target(grin-jobs-man ALL DEPENDS ${GRIN_MAN_DIR}/grin-jobs.1.gz)
  install(DIRECTORY ${GRIN_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
          COMPONENT grin-jobs FILES_MATCHING PATTERN "*.1.gz")
else()
  message(WARNING "help2man not found: no man pages, and the .deb cannot be built "
                  "(Debian package help2man; scripts/install-deps installs it)")
endif()

set(GRIN_COMPLETION ${PROJECT_BINARY_DIR}/completion/grin-jobs)
add_custom_command(OUTPUT ${GRIN_COMPLETION}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/completion
  COMMAND ${PROJECT_SOURCE_DIR}/cli/completion/gen-completion $<TARGET_FILE:grin-jobs>
          ${GRIN_COMPLETION}
  DEPENDS grin-jobs ${PROJECT_SOURCE_DIR}/cli/completion/gen-completion
  COMMENT "bash completion from grin-jobs --help" VERBATIM)
add_custom_target(grin-jobs-completion ALL DEPENDS ${GRIN_COMPLETION})
install(FILES ${GRIN_COMPLETION} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        COMPONENT grin-jobs)

# CPack: one binary package, grin-jobs_<version>_<arch>.deb.
set(GRIN_PACKAGE_MAINTAINER "grin-jobs dev <dev@grin-jobs.local>"
    CACHE STRING "Maintainer field of the .deb")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME grin-jobs)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "move a library's Google Books corpus from GRIN into its own storage")
set(CPACK_PACKAGE_DESCRIPTION
    "grin-jobs copies a library's books from Google's GRIN into S3, R2, MinIO or a local \
folder: it downloads, decrypts and extracts each archive (OCR text, MARC metadata), keeps \
every book's state in SQLite and resumes exactly where it stopped.")
set(CPACK_PACKAGE_CONTACT "${GRIN_PACKAGE_MAINTAINER}")
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};${PROJECT_NAME};grin-jobs;/")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)  # the RelWithDebInfo binary is ~140 MB with its debug info
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
# Depends: the shared libraries the binary links, with versions, from dpkg-shlibdeps (dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The only program grin-jobs runs is gpg (`--decrypt-backend gpg`, `extract --backend gpg`, and
# the automatic choice for large archives the built-in decoder cannot read); when it is missing
# the automatic choice uses librnp, in-process. So it is recommended, not required.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "gpg")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bash-completion")
include(CPack)

# The package test: only when the tests are configured (tests/ defines grin_test_support).
if(TARGET grin_test_support)
  add_test(NAME package_deb
    COMMAND ${PROJECT_SOURCE_DIR}/tests/package/deb_test ${PROJECT_BINARY_DIR} ${PROJECT_VERSION})
  set_tests_properties(package_deb PROPERTIES TIMEOUT 120 LABELS package)
endif()
