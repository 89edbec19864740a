#include "engine/pipeline/checkpoint_journal.h"

namespace grin::pipeline {

using nlohmann::json;

json ParseCheckpoint(const std::string& text) {
  if (text.empty()) return json::object();
  json j = json::parse(text, nullptr, false);
  return j.is_object() ? j : json::object();
}

std::optional<MultipartState> RecordedUpload(const json& cp) {
  if (!cp.contains("upload") || !cp["upload"].is_object()) return std::nullopt;
  const json& u = cp["upload"];
  MultipartState s;
  s.upload_id = u.value("id", "");
  s.part_size = u.value("part_size", uint64_t{0});
  if (u.contains("parts") && u["parts"].is_array()) {
    for (const auto& p : u["parts"]) {
      s.parts.push_back(UploadedPart{p.value("n", 0), p.value("size", uint64_t{0}),
                                     p.value("etag", "")});
    }
  }
  if (s.upload_id.empty() || s.part_size == 0) return std::nullopt;
  return s;
}

Status CheckpointJournal::OnBegin(const std::string&, const std::string&,
                                  const MultipartState& s) {
  std::lock_guard<std::mutex> l(mu_);
  cp_["upload"] = {{"id", s.upload_id}, {"part_size", s.part_size}, {"parts", json::array()}};
  for (const auto& p : s.parts) {
    cp_["upload"]["parts"].push_back({{"n", p.number}, {"size", p.size}, {"etag", p.etag}});
  }
  return store_->SaveCheckpoint(item_, cp_.dump());
}

Status CheckpointJournal::OnPart(const std::string&, const std::string&,
                                 const std::string& upload_id, const UploadedPart& p) {
  std::lock_guard<std::mutex> l(mu_);
  if (!cp_.contains("upload") || cp_["upload"]["id"] != upload_id) return Status::Ok();
  cp_["upload"]["parts"].push_back({{"n", p.number}, {"size", p.size}, {"etag", p.etag}});
  return store_->SaveCheckpoint(item_, cp_.dump());
}

Status CheckpointJournal::OnFinish(const std::string&, const std::string&, const std::string&) {
  std::lock_guard<std::mutex> l(mu_);
  cp_.erase("upload");
  return store_->SaveCheckpoint(item_, cp_.dump());
}

}  // namespace grin::pipeline
