# embed_sql(<out_cc> <namespace> <var_prefix> <sql files...>)
# Generates a .cc defining, for each file NNNN_name.sql, a std::string_view holding its text, and
# an array kMigrations of {version, name, sql} in file order. Editing a .sql file rebuilds.
# embed_sql(<out_cc> NAME <name> <sql files...>) names the arrays k<name>Migrations and
# k<name>MigrationCount instead (another dialect's migrations, e.g. NAME Pg).
function(embed_sql out_cc)
  set(sql_files ${ARGN})
  set(name "")
  list(LENGTH sql_files n)
  if(n GREATER 1)
    list(GET sql_files 0 first)
    if(first STREQUAL "NAME")
      list(GET sql_files 1 name)
      list(REMOVE_AT sql_files 0 1)
    endif()
  endif()
  add_custom_command(
    OUTPUT ${out_cc}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out_cc} "-DFILES=${sql_files}" "-DNAME=${name}"
            -P ${PROJECT_SOURCE_DIR}/scripts/cmake/EmbedSqlScript.cmake
    DEPENDS ${sql_files} ${PROJECT_SOURCE_DIR}/scripts/cmake/EmbedSqlScript.cmake
    COMMENT "Embedding SQL migrations ${name}"
    VERBATIM)
endfunction()
