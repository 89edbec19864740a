#include "tests/fake_grin/faults.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace grin::fake {
namespace {

using nlohmann::json;

const std::set<std::string>& KnownActions() {
  static const std::set<std::string> k = {
      "status", "unavailable", "service_login", "slow_first_byte", "throttle",
      "stall", "truncate", "corrupt", "wrong_length", "etag", "drop_next",
      "process_short", "process_unknown", "malformed", "bad_row", "reset", "global_throttle",
      "reconvert", "expire", "invalid_grant", "shift_rows", "empty", "unsatisfiable",
      "rate_limit"};
  return k;
}

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

Result<FaultRule> FromJson(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("a fault rule must be a JSON object");
  FaultRule r;
  try {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      const json& v = it.value();
      if (k == "endpoint") r.endpoint = v.get<std::string>();
      else if (k == "dir") r.dir = v.get<std::string>();
      else if (k == "barcode") r.barcode = v.get<std::string>();
      else if (k == "after") r.after = v.get<int64_t>();
      else if (k == "nth") r.nth = v.get<int64_t>();
      else if (k == "every") r.every = v.get<int64_t>();
      else if (k == "probability") r.probability = v.get<double>();
      else if (k == "times") r.times = v.get<int64_t>();
      else if (k == "action") r.action = v.get<std::string>();
      else if (k == "status") r.status = v.get<int>();
      else if (k == "retry_after") r.retry_after = v.is_string() ? v.get<std::string>()
                                                                  : std::to_string(v.get<int64_t>());
      else if (k == "delay_ms") r.delay_ms = v.get<int64_t>();
      else if (k == "rate_bps") r.rate_bps = v.get<int64_t>();
      else if (k == "stall_ms") r.stall_ms = v.get<int64_t>();
      else if (k == "at_byte") r.at_byte = v.get<int64_t>();
      else if (k == "length_delta") r.length_delta = v.get<int64_t>();
      else if (k == "etag_mode") r.etag_mode = v.get<std::string>();
      else if (k == "close_mode") r.close_mode = v.get<std::string>();
      else if (k == "shift") r.shift = v.get<int64_t>();
      else if (k == "rate_rps") r.rate_rps = v.get<double>();
      else if (k == "burst") r.burst = v.get<int64_t>();
      else if (k == "window_start_s") r.window_start_s = v.get<int64_t>();
      else if (k == "window_end_s") r.window_end_s = v.get<int64_t>();
      else if (k == "conn_first") r.conn_first = v.get<int64_t>();
      else if (k == "conn_after") r.conn_after = v.get<int64_t>();
      else if (k == "id" || k == "matches" || k == "fires" || k == "added_at") continue;
      else return Status::InvalidArgument("unknown fault field '" + k + "'");
    }
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("bad fault rule: ") + e.what());
  }
  if (!KnownActions().count(r.action)) {
    return Status::InvalidArgument("unknown fault action '" + r.action + "'");
  }
  if (r.action == "etag" && r.etag_mode != "missing" && r.etag_mode != "weak" &&
      r.etag_mode != "unquoted" && r.etag_mode != "change") {
    return Status::InvalidArgument("etag_mode must be missing, weak, unquoted or change");
  }
  if (!r.close_mode.empty() && r.close_mode != "fin" && r.close_mode != "rst" &&
      r.close_mode != "chunked") {
    return Status::InvalidArgument("close_mode must be fin, rst or chunked");
  }
  if ((r.action == "throttle" || r.action == "global_throttle") && r.rate_bps <= 0) {
    return Status::InvalidArgument(r.action + " needs rate_bps > 0");
  }
  if (r.action == "rate_limit" && (r.rate_rps <= 0 || r.burst < 1)) {
    return Status::InvalidArgument("rate_limit needs rate_rps > 0 and burst >= 1");
  }
  if (r.action == "rate_limit" && !j.contains("status")) r.status = 429;
  if (r.probability < 0 || r.probability > 1) {
    return Status::InvalidArgument("probability must be in [0, 1]");
  }
  return r;
}

}  // namespace

Result<FaultRule> ParseFaultRule(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("fault rule is not valid JSON");
  return FromJson(j);
}

Result<std::vector<FaultRule>> ParseFaultRules(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("fault rules are not valid JSON");
  std::vector<FaultRule> out;
  if (j.is_array()) {
    for (const auto& e : j) {
      GRIN_ASSIGN_OR_RETURN(FaultRule r, FromJson(e));
      out.push_back(std::move(r));
    }
  } else {
    GRIN_ASSIGN_OR_RETURN(FaultRule r, FromJson(j));
    out.push_back(std::move(r));
  }
  return out;
}

std::string FaultRulesToJson(const std::vector<FaultRule>& rules) {
  json a = json::array();
  for (const auto& r : rules) {
    a.push_back({{"id", r.id}, {"endpoint", r.endpoint}, {"dir", r.dir}, {"barcode", r.barcode},
                 {"after", r.after}, {"nth", r.nth}, {"every", r.every},
                 {"probability", r.probability}, {"times", r.times}, {"action", r.action},
                 {"status", r.status}, {"retry_after", r.retry_after}, {"delay_ms", r.delay_ms},
                 {"rate_bps", r.rate_bps}, {"stall_ms", r.stall_ms}, {"at_byte", r.at_byte},
                 {"length_delta", r.length_delta}, {"etag_mode", r.etag_mode},
                 {"close_mode", r.close_mode}, {"shift", r.shift},
                 {"rate_rps", r.rate_rps}, {"burst", r.burst},
                 {"window_start_s", r.window_start_s}, {"window_end_s", r.window_end_s},
                 {"conn_first", r.conn_first}, {"conn_after", r.conn_after},
                 {"matches", r.matches}, {"fires", r.fires}, {"added_at", r.added_at}});
  }
  return a.dump();
}

bool EndpointMatches(std::string_view p, std::string_view e) {
  if (p == "*" || p == e) return true;
  if (p == "lists") {
    return e == "all_books" || e == "converted" || e == "in_process" || e == "failed" ||
           e == "available";
  }
  if (p == "archive") return e == "archive_head" || e == "archive_get";
  if (p == "grin") return e != "token" && e != "auth";
  return false;
}

int64_t FaultSet::Add(FaultRule rule, int64_t now_s) {
  std::lock_guard<std::mutex> l(mu_);
  rule.id = next_id_++;
  rule.added_at = now_s;
  rule.matches = rule.fires = 0;
  rules_.push_back(std::move(rule));
  return rules_.back().id;
}

void FaultSet::Clear() {
  std::lock_guard<std::mutex> l(mu_);
  rules_.clear();
}

std::vector<FaultRule> FaultSet::List() const {
  std::lock_guard<std::mutex> l(mu_);
  return rules_;
}

std::vector<FaultRule> FaultSet::Fire(std::string_view endpoint, std::string_view dir,
                                      const std::vector<std::string>& barcodes,
                                      const RequestFacts& facts) {
  std::vector<FaultRule> out;
  std::lock_guard<std::mutex> l(mu_);
  for (auto& r : rules_) {
    if (!EndpointMatches(r.endpoint, endpoint)) continue;
    if (!r.dir.empty() && r.dir != dir) continue;
    if (!r.barcode.empty() &&
        std::find(barcodes.begin(), barcodes.end(), r.barcode) == barcodes.end()) {
      continue;
    }
    const int64_t t = facts.now_s - r.added_at;
    if (t < r.window_start_s || (r.window_end_s > 0 && t >= r.window_end_s)) continue;
    if (r.conn_first > 0 && facts.conn_request > r.conn_first) continue;
    if (r.conn_after > 0 && facts.conn_request <= r.conn_after) continue;
    const int64_t n = ++r.matches;  // 1-based match number
    if (n <= r.after) continue;
    const int64_t k = n - r.after;
    if (r.nth > 0 && k != r.nth) continue;
    if (r.every > 0 && k % r.every != 0) continue;
    if (r.times >= 0 && r.fires >= r.times) continue;
    if (r.probability < 1.0) {
      uint64_t h = Mix(seed_ ^ Mix(static_cast<uint64_t>(r.id) * 1315423911ULL +
                                   static_cast<uint64_t>(n)));
      double u = static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
      if (u >= r.probability) continue;
    }
    ++r.fires;
    out.push_back(r);
  }
  return out;
}

}  // namespace grin::fake
