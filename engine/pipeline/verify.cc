#include "engine/pipeline/verify.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "engine/archive/digest.h"
#include "engine/pipeline/storage_litter.h"

namespace grin::pipeline {
namespace {

constexpr std::string_view kProbe = "BARCODE";

// A book output's key form, from its location function: keys are head + f(barcode).
struct KeyForm {
  ObjectLocation (*locate)(const StorageLayout&, std::string_view);
  std::string bucket;
  std::string head;  // the key up to the barcode (the layout's prefix)
  std::string tail;  // after the first barcode

  KeyForm(ObjectLocation (*f)(const StorageLayout&, std::string_view), const StorageLayout& l)
      : locate(f) {
    ObjectLocation probe = f(l, kProbe);
    bucket = probe.bucket;
    size_t at = probe.key.find(kProbe);
    head = probe.key.substr(0, at);
    tail = probe.key.substr(at + kProbe.size());
  }

  // The barcode whose output `key` is, or nullopt.
  std::optional<std::string> Match(const StorageLayout& l, const std::string& key) const {
    if (key.compare(0, head.size(), head) != 0) return std::nullopt;
    std::string rest = key.substr(head.size());
    std::string candidates[2] = {rest.substr(0, rest.find('/')), ""};
    if (rest.size() > tail.size() &&
        rest.compare(rest.size() - tail.size(), tail.size(), tail) == 0) {
      candidates[1] = rest.substr(0, rest.size() - tail.size());
    }
    for (const std::string& c : candidates) {
      if (!c.empty() && IsValidBarcode(c) && locate(l, c).key == key) return c;
    }
    return std::nullopt;
  }
};

ObjectLocation RawOf(const StorageLayout& l, std::string_view b) { return RawArchiveLocation(l, b); }
ObjectLocation FullOf(const StorageLayout& l, std::string_view b) { return FullTextLocation(l, b); }
ObjectLocation MetaOf(const StorageLayout& l, std::string_view b) { return MetaLocation(l, b); }

struct Expect {
  bool done = false;
  bool marc = false;
  bool raw_seen = false;
  bool ocr_seen = false;
  int64_t raw_size = -1;        // recorded
  uint64_t raw_listed = 0;      // listed
};

// SHA-256 of a download, restartable (the store may retry a cut-off body).
class HashSink final : public ObjectSink {
 public:
  HashSink() : d_(std::make_unique<archive::StreamDigests>(false)) {}
  Status Write(std::string_view data) override {
    d_->Update(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    return Status::Ok();
  }
  bool Restart() override {
    d_ = std::make_unique<archive::StreamDigests>(false);
    return true;
  }
  std::string Final() {
    d_->Final();
    return d_->sha256_hex();
  }
  uint64_t bytes() const { return d_->bytes(); }

 private:
  std::unique_ptr<archive::StreamDigests> d_;
};

// Not the book's fault: stop verifying rather than report books.
bool Systemic(const Status& s) {
  return s.code() != StatusCode::kNotFound && s.code() != StatusCode::kDataLoss;
}

}  // namespace

bool IsRawProblem(const std::string& problem) {
  return problem == "raw_size" || problem == "raw_metadata" || problem == "raw_sha256";
}

Result<VerifyReport> Verify(ObjectStore& objects, const VerifyOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  Logger& log = opt.logger ? *opt.logger : *NullLogger::Default();
  if (!opt.for_each_book) return Status::InvalidArgument("verify: no state to verify against");
  if (opt.deep && !opt.record) return Status::InvalidArgument("verify --deep: no records");
  if (opt.requeue && !opt.store) return Status::InvalidArgument("verify --requeue: no state store");
  VerifyReport rep;

  // 1. The state: every job of the run.
  std::unordered_map<std::string, Expect> books;
  GRIN_RETURN_IF_ERROR(opt.for_each_book([&](VerifyBook b) {
    Expect e;
    e.done = b.done;
    e.marc = b.marc_recorded;
    e.raw_size = b.raw_size;
    rep.done += b.done ? 1 : 0;
    books.emplace(std::move(b.barcode), e);
  }));
  rep.books = static_cast<int64_t>(books.size());

  // 2. Storage: one listing per bucket that holds book outputs.
  const KeyForm raw(RawOf, opt.layout), full(FullOf, opt.layout), meta(MetaOf, opt.layout);
  std::map<std::string, std::vector<const KeyForm*>> buckets;
  buckets[raw.bucket].push_back(&raw);
  if (!opt.skip_ocr) buckets[full.bucket].push_back(&full);
  for (const auto& [bucket, forms] : buckets) {
    std::string prefix = forms[0]->head;
    for (const KeyForm* f : forms) {
      size_t n = 0;
      while (n < prefix.size() && n < f->head.size() && prefix[n] == f->head[n]) ++n;
      prefix.resize(n);
    }
    ++rep.list_requests;
    Status s = objects.ForEachObject(bucket, prefix, [&](const ObjectInfo& o) {
      ++rep.objects_listed;
      for (const KeyForm* f : forms) {
        auto barcode = f->Match(opt.layout, o.key);
        if (!barcode) continue;
        auto it = books.find(*barcode);
        if (it == books.end()) break;  // a book this run does not know
        if (f == &raw) {
          it->second.raw_seen = true;
          it->second.raw_listed = o.size;
        } else {
          it->second.ocr_seen = true;
        }
        return Status::Ok();
      }
      if (bucket == meta.bucket && o.key.compare(0, meta.head.size(), meta.head) == 0 &&
          !raw.Match(opt.layout, o.key) && !full.Match(opt.layout, o.key)) {
        return Status::Ok();  // the run's meta objects, in the same bucket
      }
      if (rep.unknown_sample.size() < kUnknownSample) {
        rep.unknown_sample.push_back(bucket + "/" + o.key);
      }
      ++rep.unknown_objects;
      return Status::Ok();
    });
    if (!s.ok() && s.code() != StatusCode::kNotFound) {  // no bucket: nothing stored
      return Status(s.code(), "listing bucket '" + bucket + "': " + s.message());
    }
  }

  // 3. Each done book against what the listing found.
  std::vector<std::string> deep_books;
  auto add = [&rep](const std::string& b, const char* problem, std::string detail) {
    rep.mismatches.push_back({b, problem, std::move(detail)});
  };
  for (const auto& [barcode, e] : books) {
    if (!e.done) continue;
    const std::string raw_name = raw.bucket + "/" + raw.locate(opt.layout, barcode).key;
    bool raw_ok = e.raw_seen;
    if (!e.raw_seen) {
      add(barcode, "raw_missing", raw_name + " is not in storage");
    } else if (e.raw_size >= 0 && e.raw_listed != static_cast<uint64_t>(e.raw_size)) {
      add(barcode, "raw_size",
          raw_name + " holds " + std::to_string(e.raw_listed) + " bytes, " +
              std::to_string(e.raw_size) + " were uploaded");
      raw_ok = false;
    }
    if (!opt.skip_ocr && !e.ocr_seen) {
      add(barcode, "ocr_missing",
          full.bucket + "/" + full.locate(opt.layout, barcode).key + " is not in storage");
    }
    if (!opt.skip_marc && !e.marc) {
      add(barcode, "marc_missing", "no MARC columns recorded (books.marc_extraction_timestamp)");
    }
    if (raw_ok && opt.deep) deep_books.push_back(barcode);
  }

  // 4. Deep: download every good-looking raw archive; metadata and SHA-256.
  if (opt.deep && !deep_books.empty()) {
    std::sort(deep_books.begin(), deep_books.end());
    std::mutex mu;
    Status fatal;
    std::atomic<size_t> next{0};
    auto stopping = [&] {
      std::lock_guard<std::mutex> l(mu);
      return !fatal.ok() || (opt.stop && opt.stop->load() != 0);
    };
    auto worker = [&] {
      for (;;) {
        if (stopping()) return;
        size_t i = next.fetch_add(1);
        if (i >= deep_books.size()) return;
        const std::string& barcode = deep_books[i];
        ObjectLocation loc = raw.locate(opt.layout, barcode);
        const std::string name = loc.bucket + "/" + loc.key;
        auto rec = opt.record(barcode);
        if (!rec.ok()) {
          std::lock_guard<std::mutex> l(mu);
          if (fatal.ok()) fatal = rec.status();
          return;
        }
        HashSink sink;
        auto got = objects.Get(loc.bucket, loc.key, sink);
        std::lock_guard<std::mutex> l(mu);
        if (!got.ok()) {
          if (Systemic(got.status())) {
            if (fatal.ok()) {
              fatal = Status(got.status().code(), "downloading " + name + ": " +
                                                       got.status().message());
            }
            return;
          }
          add(barcode, got.status().code() == StatusCode::kNotFound ? "raw_missing" : "raw_sha256",
              name + ": " + got.status().message());
          continue;
        }
        ++rep.deep_checked;
        rep.deep_bytes += static_cast<int64_t>(sink.bytes());
        const std::string* etag = FindMetadata(got->metadata, "encrypted_etag");
        const std::string* meta_barcode = FindMetadata(got->metadata, "barcode");
        if (!rec->encrypted_etag.empty() && (!etag || *etag != rec->encrypted_etag)) {
          add(barcode, "raw_metadata",
              name + " has encrypted_etag '" + (etag ? *etag : std::string("(none)")) +
                  "', the state records '" + rec->encrypted_etag + "'");
        } else if (meta_barcode && *meta_barcode != barcode) {
          add(barcode, "raw_metadata", name + " has barcode metadata '" + *meta_barcode + "'");
        }
        std::string sha = sink.Final();
        if (rec->sha256_hex.empty()) {
          ++rep.deep_unrecorded;
        } else if (sha != rec->sha256_hex) {
          add(barcode, "raw_sha256",
              name + " has SHA-256 " + sha + ", " + rec->sha256_hex + " was uploaded");
        }
      }
    };
    int n = std::clamp(opt.deep_concurrency, 1, 64);
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    if (!fatal.ok()) return fatal;
    if (opt.stop && opt.stop->load() != 0) {
      return Status(StatusCode::kCancelled, "verify interrupted during the deep check");
    }
  }
  std::sort(rep.mismatches.begin(), rep.mismatches.end(),
            [](const VerifyMismatch& a, const VerifyMismatch& b) {
              return a.barcode != b.barcode ? a.barcode < b.barcode : a.problem < b.problem;
            });
  for (size_t i = 0; i < rep.mismatches.size(); ++i) {
    if (i == 0 || rep.mismatches[i].barcode != rep.mismatches[i - 1].barcode) {
      ++rep.books_mismatched;
    }
    log.Log(LogLevel::kDebug, "verify.mismatch",
            {{"barcode", rep.mismatches[i].barcode},
             {"problem", rep.mismatches[i].problem},
             {"detail", rep.mismatches[i].detail}});
  }

  // 5. Litter, removed as a sync removes it.
  StorageLitter litter = SweepStorageLitter(objects, opt.layout, opt.job_view, log, "verify");
  rep.temporaries_removed = litter.temporaries_removed;
  rep.uploads_aborted = std::move(litter.uploads_aborted);
  rep.litter_errors = std::move(litter.errors);

  // 6. Requeue: bad archives deleted, then every mismatching book back to pending.
  if (opt.requeue && !rep.mismatches.empty()) {
    std::set<std::string> requeue, bad_raw;
    for (const auto& m : rep.mismatches) {
      requeue.insert(m.barcode);
      if (IsRawProblem(m.problem)) bad_raw.insert(m.barcode);
    }
    std::vector<std::string> keys;
    std::map<std::string, std::string> barcode_of;
    for (const auto& b : bad_raw) {
      keys.push_back(raw.locate(opt.layout, b).key);
      barcode_of[keys.back()] = b;
    }
    if (!keys.empty()) {
      auto failures = objects.DeleteMany(raw.bucket, keys);
      if (!failures.ok()) {
        return Status(failures.status().code(),
                      "deleting bad raw archives: " + failures.status().message());
      }
      for (const auto& f : *failures) {
        const std::string& b = barcode_of[f.key];
        requeue.erase(b);
        bad_raw.erase(b);
        rep.requeue_errors.push_back(b + ": " + raw.bucket + "/" + f.key +
                                     " could not be deleted: " + f.status.message());
      }
      rep.raw_deleted = static_cast<int64_t>(bad_raw.size());
    }
    ResetRequest reset;
    reset.barcodes.assign(requeue.begin(), requeue.end());
    reset.include_done = true;
    GRIN_ASSIGN_OR_RETURN(rep.requeued, opt.store->Reset(reset));
    GRIN_RETURN_IF_ERROR(opt.store->Flush());
    log.Log(LogLevel::kInfo, "verify.requeued",
            {{"books", std::to_string(rep.requeued)}, {"raw_deleted", std::to_string(rep.raw_deleted)}});
  }
  rep.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace grin::pipeline
