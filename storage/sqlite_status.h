#pragma once
// Maps SQLiteCpp exceptions to Status at the storage API boundary (SQLiteCpp throws; our public
// API does not).

#include <string_view>

#include "engine/base/status.h"

namespace SQLite {
class Exception;
}

namespace grin::storage {

// kBusy for BUSY/LOCKED, kDataLoss for CORRUPT/NOTADB, kResourceExhausted for FULL,
// kPermissionDenied for READONLY/PERM/CANTOPEN, kInternal otherwise. `what` names the file or
// operation, e.g. "output/run1/books.db".
Status FromSqliteException(const SQLite::Exception& e, std::string_view what);

}  // namespace grin::storage
