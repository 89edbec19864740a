#include "engine/pipeline/checkpoint_journal.h"

#include <type_traits>

#include <nlohmann/json.hpp>

namespace grin::pipeline {
namespace {

using nlohmann::json;

// The field `key` of object `j` if it has type T, else `fallback` (never throws).
std::string StringField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
template <typename T>
T IntField(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return fallback;
  if (std::is_unsigned_v<T> && it->is_number_integer() && !it->is_number_unsigned() &&
      it->get<int64_t>() < 0) {
    return fallback;
  }
  return it->get<T>();
}

std::optional<MultipartState> DecodeUpload(const json& cp) {
  auto it = cp.find("upload");
  if (it == cp.end() || !it->is_object()) return std::nullopt;
  const json& u = *it;
  MultipartState s;
  s.upload_id = StringField(u, "id");
  s.part_size = IntField<uint64_t>(u, "part_size", 0);
  auto parts = u.find("parts");
  if (parts != u.end() && parts->is_array()) {
    for (const auto& p : *parts) {
      if (!p.is_object()) continue;
      s.parts.push_back(UploadedPart{IntField<int>(p, "n", 0), IntField<uint64_t>(p, "size", 0),
                                     StringField(p, "etag")});
    }
  }
  if (s.upload_id.empty() || s.part_size == 0) return std::nullopt;
  return s;
}

}  // namespace

JobCheckpoint DecodeCheckpoint(const std::string& text) {
  JobCheckpoint cp;
  if (text.empty()) return cp;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return cp;
  cp.archive.etag = StringField(j, "etag");
  cp.archive.size = IntField<int64_t>(j, "size", -1);
  cp.upload = DecodeUpload(j);
  return cp;
}

std::string EncodeCheckpoint(const JobCheckpoint& cp) {
  json j = {{"etag", cp.archive.etag}, {"size", cp.archive.size}};
  if (cp.upload) {
    json parts = json::array();
    for (const auto& p : cp.upload->parts) {
      parts.push_back({{"n", p.number}, {"size", p.size}, {"etag", p.etag}});
    }
    j["upload"] = {
        {"id", cp.upload->upload_id}, {"part_size", cp.upload->part_size}, {"parts", parts}};
  }
  return j.dump();
}

Status CheckpointJournal::OnBegin(const std::string&, const std::string&,
                                  const MultipartState& s) {
  std::lock_guard<std::mutex> l(mu_);
  cp_.upload = MultipartState{s.upload_id, s.part_size, s.parts};
  return store_->SaveCheckpoint(item_, EncodeCheckpoint(cp_));
}

Status CheckpointJournal::OnPart(const std::string&, const std::string&,
                                 const std::string& upload_id, const UploadedPart& p) {
  std::lock_guard<std::mutex> l(mu_);
  if (!cp_.upload || cp_.upload->upload_id != upload_id) return Status::Ok();
  cp_.upload->parts.push_back(p);
  return store_->SaveCheckpoint(item_, EncodeCheckpoint(cp_));
}

Status CheckpointJournal::OnFinish(const std::string&, const std::string&, const std::string&) {
  std::lock_guard<std::mutex> l(mu_);
  cp_.upload.reset();
  return store_->SaveCheckpoint(item_, EncodeCheckpoint(cp_));
}

}  // namespace grin::pipeline
