#pragma once
// Status and Result<T>, the library's error values: every call of the facade returns one and
// never throws. These are the engine's own types (engine/base/status.h, result.h), installed
// with the public headers.

#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin::jobs {

using grin::Status;
using grin::StatusCode;
template <typename T>
using Result = grin::Result<T>;

}  // namespace grin::jobs
