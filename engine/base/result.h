#pragma once
// Result<T>: either a value of type T or a non-OK Status. GCC 12 has std::expected only in
// C++23 mode, so this is a small stand-in on std::variant.

#include <cassert>
#include <utility>
#include <variant>

#include "engine/base/status.h"

namespace grin {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // The error; OK if this holds a value.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  T& value() & { assert(ok()); return std::get<T>(v_); }
  const T& value() const& { assert(ok()); return std::get<T>(v_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(v_)); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace grin

#define GRIN_CONCAT_INNER_(a, b) a##b
#define GRIN_CONCAT_(a, b) GRIN_CONCAT_INNER_(a, b)
// GRIN_ASSIGN_OR_RETURN(auto x, Foo()); — returns Foo()'s Status from the enclosing function on
// error, otherwise moves the value into the declaration.
#define GRIN_ASSIGN_OR_RETURN(decl, expr)                                  \
  auto GRIN_CONCAT_(grin_result_, __LINE__) = (expr);                      \
  if (!GRIN_CONCAT_(grin_result_, __LINE__).ok())                          \
    return GRIN_CONCAT_(grin_result_, __LINE__).status();                  \
  decl = std::move(GRIN_CONCAT_(grin_result_, __LINE__)).value()
