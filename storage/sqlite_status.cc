#include "storage/sqlite_status.h"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <string>

namespace grin::storage {

Status FromSqliteException(const SQLite::Exception& e, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  switch (e.getErrorCode()) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Busy(msg + "database is busy: " + e.what());
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::DataLoss(msg + "not a valid grin-jobs database (" + e.what() +
                              "); restore it from a backup or start a new run");
    case SQLITE_FULL:
      return Status::NoSpace(msg + "disk full (" + e.what() + "); free space and rerun");
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
    case SQLITE_AUTH:
      return Status::PermissionDenied(msg + "cannot open or write (" + e.what() +
                                      "); check the path and its permissions");
    case SQLITE_IOERR:
      return Status::Unavailable(msg + "I/O error (" + e.what() + ")");
    default:
      return Status::Internal(msg + e.what());
  }
}

}  // namespace grin::storage
