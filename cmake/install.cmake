# Install rules: `cmake --install build` (prefix /usr/local unless
# CMAKE_INSTALL_PREFIX or --prefix says otherwise; DESTDIR honoured).
#
#   PREFIX/bin/molerat
#   PREFIX/share/man/man1/molerat.1, PREFIX/share/man/man5/molerat.toml.5
#   PREFIX/lib/systemd/system/molerat-server@.service, molerat-client@.service
#   PREFIX/share/doc/molerat/{LICENSE,README.md,configuration.md,install.md}
#   PREFIX/share/doc/molerat/examples/*.toml
#
# The units go to PREFIX/lib/systemd/system, which systemd searches for the
# prefixes /usr and /usr/local (see `systemd-analyze unit-paths`). With
# another prefix (/opt/molerat, $HOME/.local) systemd would not find them
# there: pass -DMOLERAT_SYSTEMD_UNITDIR=/etc/systemd/system (an absolute
# path is used as is; a relative one is under the prefix). Details:
# docs/install.md.
include(GNUInstallDirs)

set(MOLERAT_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "where the systemd units are installed: relative to the install prefix, or absolute")

install(TARGETS molerat RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(FILES ${CMAKE_SOURCE_DIR}/man/molerat.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_SOURCE_DIR}/man/molerat.toml.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

install(FILES ${CMAKE_SOURCE_DIR}/LICENSE ${CMAKE_SOURCE_DIR}/README.md
              ${CMAKE_SOURCE_DIR}/docs/configuration.md ${CMAKE_SOURCE_DIR}/docs/install.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        FILES_MATCHING PATTERN "*.toml")

# The units name the binary by its absolute path (ExecStart=@BINDIR@/molerat).
# They are configured at install time, not at configure time, so that
# `cmake --install build --prefix X` gives ExecStart=X/bin/molerat: the
# CMAKE_INSTALL_PREFIX seen here is the one of the install step (without
# DESTDIR, which is only where the tree is staged).
set(_molerat_units molerat-server@.service molerat-client@.service)
set(_molerat_unit_stage ${CMAKE_BINARY_DIR}/install-units)
foreach(unit ${_molerat_units})
  install(CODE "
    if(IS_ABSOLUTE \"${CMAKE_INSTALL_BINDIR}\")
      set(BINDIR \"${CMAKE_INSTALL_BINDIR}\")
    else()
      set(BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
    endif()
    configure_file(\"${CMAKE_SOURCE_DIR}/dist/systemd/${unit}\" \"${_molerat_unit_stage}/${unit}\" @ONLY)
  ")
  install(FILES ${_molerat_unit_stage}/${unit} DESTINATION ${MOLERAT_SYSTEMD_UNITDIR})
endforeach()
