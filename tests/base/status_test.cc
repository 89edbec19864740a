#include <doctest/doctest.h>

#include "engine/base/clock.h"
#include "engine/base/result.h"
#include "engine/base/status.h"

namespace grin {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  GRIN_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST_CASE("Status carries code and message") {
  Status ok;
  CHECK(ok.ok());
  CHECK(ok.ToString() == "OK");
  Status nf = Status::NotFound("book X");
  CHECK_FALSE(nf.ok());
  CHECK(nf.code() == StatusCode::kNotFound);
  CHECK(nf.ToString() == "NotFound: book X");
  CHECK(nf.WithContext("head").message() == "head: book X");
}

TEST_CASE("Result propagates errors through GRIN_ASSIGN_OR_RETURN") {
  CHECK(Quarter(8).value() == 2);
  CHECK(Quarter(6).status().code() == StatusCode::kInvalidArgument);
  CHECK(Quarter(3).status().message() == "odd");
}

TEST_CASE("FakeClock moves only when told") {
  FakeClock c(1'000'000);
  CHECK(c.NowMicros() == 1'000'000);
  c.AdvanceSeconds(1.5);
  CHECK(c.NowMicros() == 2'500'000);
  CHECK(FormatIsoUtc(0) == "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace grin
