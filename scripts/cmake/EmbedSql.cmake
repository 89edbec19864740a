# embed_sql(<out_cc> <namespace> <var_prefix> <sql files...>)
# Generates a .cc defining, for each file NNNN_name.sql, a std::string_view holding its text, and
# an array kMigrations of {version, name, sql} in file order. Editing a .sql file rebuilds.
function(embed_sql out_cc)
  set(sql_files ${ARGN})
  add_custom_command(
    OUTPUT ${out_cc}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out_cc} "-DFILES=${sql_files}"
            -P ${PROJECT_SOURCE_DIR}/scripts/cmake/EmbedSqlScript.cmake
    DEPENDS ${sql_files} ${PROJECT_SOURCE_DIR}/scripts/cmake/EmbedSqlScript.cmake
    COMMENT "Embedding SQL migrations"
    VERBATIM)
endfunction()
