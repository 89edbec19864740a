#include "engine/grin/client.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <future>
#include <random>
#include <thread>

#include "engine/base/encoding.h"

namespace grin::grin_client {
namespace {

bool IsLoginRedirect(int status, const std::string& location) {
  return status >= 300 && status < 400 && location.find("ServiceLogin") != std::string::npos;
}

void SetHeader(net::Headers* headers, const std::string& name, const std::string& value) {
  for (auto& [k, v] : *headers) {
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      v = value;
      return;
    }
  }
  headers->emplace_back(name, value);
}

// The URL without its query, for messages (a query could carry long barcode lists).
std::string PageName(const std::string& url) { return url.substr(0, url.find('?')) +
                                                       (url.find('?') != std::string::npos
                                                            ? "?" + url.substr(url.find('?') + 1, 80)
                                                            : ""); }

constexpr std::string_view kUnavailableText = "Your request is unavailable";

// The result_count=N of a list page URL, or 0.
int64_t ResultCountOf(const std::string& url) {
  const size_t q = url.find('?');
  if (q == std::string::npos) return 0;
  for (size_t p = q; p != std::string::npos && p < url.size(); p = url.find('&', p + 1)) {
    const size_t start = p + 1;
    if (url.compare(start, 13, "result_count=") == 0) {
      return std::strtoll(url.c_str() + start + 13, nullptr, 10);
    }
  }
  return 0;
}

}  // namespace

std::string UnquoteETag(std::string_view etag) {
  if (etag.rfind("W/", 0) == 0) etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

GrinClient::GrinClient(net::Transport* transport, TokenSource* tokens, ClientOptions options)
    : transport_(transport),
      tokens_(tokens),
      options_(std::move(options)),
      logger_(options_.logger ? options_.logger : NullLogger::Default()) {}

std::string GrinClient::DirectoryUrl() const {
  std::string base = options_.base_url;
  if (base.empty() || base.back() != '/') base += '/';
  return base + options_.directory + "/";
}

std::string GrinClient::ListUrl(std::string_view list, int page_size) const {
  return DirectoryUrl() + "_" + std::string(list) + "?result_count=" + std::to_string(page_size);
}

void GrinClient::MakePatient(net::Request* request, bool list) const {
  request->retry = options_.patience;
  if (list) request->low_speed_time_seconds = options_.list_low_speed_time_seconds;
}

void GrinClient::AttachAuth(net::Request* request) const {
  if (!tokens_) return;
  TokenSource* tokens = tokens_;
  net::PrepareFn prev = request->prepare;
  request->prepare = [tokens, prev](net::Request& r, int attempt) -> Status {
    if (prev) GRIN_RETURN_IF_ERROR(prev(r, attempt));
    SetHeader(&r.headers, "Authorization", "Bearer " + tokens->CachedToken());
    return Status::Ok();
  };
}

Result<net::Response> GrinClient::Send(net::Request request, std::vector<net::Response>* hops) {
  return SendWatched(std::move(request), nullptr, hops);
}

Result<net::Response> GrinClient::SendWatched(
    net::Request request, const std::function<void(net::RequestId)>& on_submit,
    std::vector<net::Response>* hops) {
  bool refreshed = false;
  int redirects = 0;
  for (int round = 0; round < options_.max_redirects + 3; ++round) {
    std::string token;
    if (tokens_) {
      GRIN_ASSIGN_OR_RETURN(token, tokens_->Token());
    }
    net::Request attempt = request;
    if (tokens_) SetHeader(&attempt.headers, "Authorization", "Bearer " + token);
    AttachAuth(&attempt);
    auto promise = std::make_shared<std::promise<net::Response>>();
    std::future<net::Response> done = promise->get_future();
    const net::RequestId id = transport_->Submit(
        std::move(attempt), [promise](net::Response resp) { promise->set_value(std::move(resp)); });
    if (on_submit) on_submit(id);
    net::Response r = done.get();
    if (hops) hops->push_back(r);
    if (!r.transport_status.ok()) {
      return r.transport_status.WithContext("GRIN " + PageName(request.url));
    }
    const std::string location = net::FindHeader(r.headers, "Location").value_or("");
    if (r.http_status == 401 || IsLoginRedirect(r.http_status, location)) {
      if (!tokens_) {
        return Status::PermissionDenied("GRIN asked for credentials (HTTP " +
                                        std::to_string(r.http_status) + ")");
      }
      if (refreshed) {
        return Status::PermissionDenied(
            "GRIN refused the access token even after a refresh: run `grin-jobs auth setup`");
      }
      logger_->Log(LogLevel::kInfo, "grin.auth.rejected",
                   {{"status", std::to_string(r.http_status)}});
      GRIN_RETURN_IF_ERROR(tokens_->ForceRefresh(token));
      refreshed = true;
      continue;
    }
    if (r.http_status == 403) return Status::PermissionDenied(kAccessListMessage);
    if (r.http_status >= 300 && r.http_status < 400 && !location.empty()) {
      if (++redirects > options_.max_redirects) {
        return Status::Unavailable("too many redirects from GRIN " + PageName(request.url));
      }
      request.url = ResolveUrl(request.url, location);
      continue;
    }
    return r;
  }
  return Status::Unavailable("GRIN " + PageName(request.url) + ": gave up after redirects");
}

Status GrinClient::CheckUnavailablePage(const net::Response& r, const std::string& what) const {
  if (r.http_status == 200 && r.body.find(kUnavailableText) != std::string::npos &&
      r.body.find("tr class=\"heading\"") == std::string::npos) {
    return Status::Unavailable("GRIN said \"Your request is unavailable\" for " + what);
  }
  return Status::Ok();
}

Status GrinClient::Probe() {
  net::Request req;
  req.url = DirectoryUrl() + "?format=text&result_count=1";
  req.sink = net::ResponseSink::Memory(1 << 20);
  req.label = "grin.probe";
  MakePatient(&req, /*list=*/true);
  GRIN_ASSIGN_OR_RETURN(net::Response r, Send(std::move(req)));
  if (r.http_status == 200) return Status::Ok();
  return r.ToStatus().WithContext("GRIN probe of " + DirectoryUrl());
}

Status GrinClient::ForEachListPage(const std::string& first_url,
                                   const std::function<Status(const ListPage&)>& fn,
                                   int max_pages) {
  auto fetch = [this](std::string url) -> Result<net::Response> {
    // 429/503/5xx and connection errors were already waited out by the transport with
    // options_.patience; "Your request is unavailable" (a 200 page) gets up to 3 tries here.
    Status last;
    for (int attempt = 1; attempt <= 3; ++attempt) {
      net::Request req;
      req.url = url;
      req.sink = net::ResponseSink::Memory(options_.max_page_bytes);
      req.label = "grin.list";
      MakePatient(&req, /*list=*/true);
      auto r = Send(std::move(req));
      if (!r.ok()) {
        return r.status();
      } else if (r->http_status != 200) {
        return r->ToStatus().WithContext("GRIN list page " + PageName(url));
      } else {
        last = CheckUnavailablePage(*r, PageName(url));
        if (last.ok()) return r;
      }
      logger_->Log(LogLevel::kWarning, "grin.list.retry",
                   {{"page", PageName(url)}, {"error", last.message()}});
      std::this_thread::sleep_for(std::chrono::milliseconds(500 * attempt));
    }
    return last;
  };

  std::string url = first_url;
  auto current = fetch(url);
  int page_number = 0;
  while (true) {
    if (!current.ok()) return current.status();
    ++page_number;
    ListPage page;
    page.url = url;
    page.page_number = page_number;
    HtmlListParser parser(url, [&page](const ListRow& row) {
      page.rows.push_back(row);
      return Status::Ok();
    });
    const std::string& body = current->body;
    GRIN_RETURN_IF_ERROR(parser.Feed(body.data(), body.size()));
    GRIN_RETURN_IF_ERROR(parser.Finish());
    if (parser.unavailable()) {
      return Status::Unavailable("GRIN said \"Your request is unavailable\" for " + PageName(url));
    }
    page.keys = parser.keys();
    for (auto& row : page.rows) row.keys = &page.keys;
    page.next_url = parser.next_url();
    page.skipped_rows = parser.skipped_rows();
    for (const auto& text : parser.skipped_samples()) {
      logger_->Log(LogLevel::kWarning, "grin.list.row_skipped",
                   {{"page", PageName(url)}, {"reason", "no readable barcode"}, {"row", text}});
    }
    if (page.skipped_rows > static_cast<int64_t>(parser.skipped_samples().size())) {
      logger_->Log(LogLevel::kWarning, "grin.list.rows_skipped",
                   {{"page", PageName(url)}, {"count", std::to_string(page.skipped_rows)}});
    }
    const int64_t page_size = ResultCountOf(url);
    if (page.next_url.empty() && page_size > 0 &&
        static_cast<int64_t>(page.rows.size()) >= page_size) {
      logger_->Log(LogLevel::kWarning, "grin.list.full_page_without_next",
                   {{"page", PageName(url)},
                    {"rows", std::to_string(page.rows.size())},
                    {"note", "a full page without a Next link: the list may go on beyond it"}});
    }
    // Free this page's body before fetching the next, then overlap the fetch with fn.
    current = Status::Cancelled("consumed");
    const bool more = !page.next_url.empty() && (max_pages == 0 || page_number < max_pages);
    std::future<Result<net::Response>> next;
    if (more) next = std::async(std::launch::async, fetch, page.next_url);
    Status s = fn(page);
    if (!s.ok()) {
      if (next.valid()) next.wait();
      return s;
    }
    if (!more) return Status::Ok();
    url = page.next_url;
    current = next.get();
  }
}

namespace {

// The body of a streamed text list between the transport thread (Write, on each chunk) and the
// reading thread (Next): complete lines wait in a queue of at most `cap` bytes; beyond it the
// transfer is paused until the reader has taken them (then Resume). Only the first kHeadBytes of
// the body are kept, to recognise GRIN's "unavailable" page.
class TextStream {
 public:
  static constexpr size_t kHeadBytes = 64 << 10;
  TextStream(net::Transport* transport, size_t cap, size_t max_line)
      : transport_(transport), cap_(cap), max_line_(max_line), splitter_(SplitterFn()) {}

  // Transport thread.
  size_t Write(const char* data, size_t len) {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return net::kBodyAbort;
    if (queued_bytes_ >= cap_) {
      paused_ = true;
      return net::kBodyPause;
    }
    if (head_.size() < kHeadBytes) head_.append(data, std::min(len, kHeadBytes - head_.size()));
    bytes_ += static_cast<int64_t>(len);
    Status s = splitter_.Feed(data, len);
    if (s.ok() && splitter_.partial_size() > max_line_) {
      s = Status::DataLoss("a line longer than " + std::to_string(max_line_) + " bytes");
    }
    if (!s.ok()) {
      error_ = s;
      stop_ = true;
      return net::kBodyAbort;
    }
    cv_.notify_one();
    return len;
  }
  // Transport thread, before a retry: the body starts again. The lines already received are
  // not delivered twice: the retried body's first lines, as many as were received before, are
  // skipped (GRIN sends a list in the same order each time).
  bool Rewind() {
    std::lock_guard<std::mutex> l(mu_);
    splitter_ = LineSplitter(SplitterFn());
    head_.clear();
    skip_ = std::max(skip_, emitted_);
    emitted_ = 0;
    return true;
  }
  void OnSubmit(net::RequestId id) {
    std::lock_guard<std::mutex> l(mu_);
    id_ = id;
    cv_.notify_one();  // a transfer paused before its id was known can be resumed now
  }
  // The request completed (any outcome); the last partial line is a line if it went well.
  void Finish(bool ok) {
    std::lock_guard<std::mutex> l(mu_);
    if (ok && !stop_) {
      Status s = splitter_.Finish();
      if (!s.ok()) error_ = s;
    }
    done_ = true;
    cv_.notify_one();
  }
  // Reader: moves the lines received so far into *out (waiting for some); false once the
  // transfer is over and every line was taken.
  bool Next(std::deque<std::string>* out) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !queue_.empty() || done_ || (paused_ && id_ != 0); });
    if (queue_.empty() && done_) return false;
    out->clear();
    out->swap(queue_);
    queued_bytes_ = 0;
    if (paused_ && id_ != 0) {
      paused_ = false;
      const net::RequestId id = id_;
      l.unlock();
      transport_->Resume(id);
    }
    return true;
  }
  // Reader: stop the transfer (fn failed).
  void Stop() {
    net::RequestId id;
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      id = id_;
      paused_ = false;
    }
    if (id != 0) transport_->Cancel(id);
  }
  Status error() const {
    std::lock_guard<std::mutex> l(mu_);
    return error_;
  }
  std::string head() const {
    std::lock_guard<std::mutex> l(mu_);
    return head_;
  }
  int64_t bytes() const {
    std::lock_guard<std::mutex> l(mu_);
    return bytes_;
  }

 private:
  LineSplitter::LineFn SplitterFn() {
    return [this](std::string_view line) {
      if (emitted_++ < skip_) return Status::Ok();
      queued_bytes_ += line.size() + 32;
      queue_.emplace_back(line);
      return Status::Ok();
    };
  }

  net::Transport* const transport_;
  const size_t cap_;
  const size_t max_line_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  LineSplitter splitter_;
  std::deque<std::string> queue_;
  size_t queued_bytes_ = 0;
  std::string head_;
  int64_t bytes_ = 0;
  int64_t emitted_ = 0;  // lines split from the body in this attempt
  int64_t skip_ = 0;     // lines received by earlier attempts
  net::RequestId id_ = 0;
  bool paused_ = false;
  bool stop_ = false;
  bool done_ = false;
  Status error_;
};

}  // namespace

Status GrinClient::ForEachTextLine(std::string_view list, std::string_view extra_query,
                                   const std::function<Status(const std::string&)>& fn,
                                   int64_t* ignored) {
  net::Request req;
  req.url = DirectoryUrl() + "_" + std::string(list) + "?format=text";
  if (!extra_query.empty()) req.url += "&" + std::string(extra_query);
  req.label = "grin.text_list";
  MakePatient(&req, /*list=*/true);
  const std::string what = PageName(req.url);
  // Streamed: the body is split into lines as it arrives and never held whole, so a list of
  // millions of lines costs a bounded buffer, however slowly GRIN sends it.
  auto stream = std::make_shared<TextStream>(
      transport_, static_cast<size_t>(options_.text_list_buffer_bytes),
      static_cast<size_t>(std::max<int64_t>(options_.max_page_bytes, 1)));
  req.sink = net::ResponseSink::Callback(
      [stream](const char* data, size_t len) { return stream->Write(data, len); },
      [stream] { return stream->Rewind(); });
  auto sent = std::async(std::launch::async, [this, stream, r = std::move(req)]() mutable {
    Result<net::Response> out =
        SendWatched(std::move(r), [stream](net::RequestId id) { stream->OnSubmit(id); });
    stream->Finish(out.ok() && out->transport_status.ok() && out->http_status == 200);
    return out;
  });

  const std::string dir = options_.directory;
  int64_t skipped = 0;
  std::string first_skipped;
  Status fn_status;
  std::deque<std::string> lines;
  while (stream->Next(&lines)) {
    if (!fn_status.ok()) continue;  // drain until the cancelled transfer completes
    for (const std::string& line : lines) {
      std::string bc = BarcodeOfListEntry(list, line, dir);
      if (bc.empty()) {
        if (skipped++ == 0) first_skipped = line.substr(0, 120);
        continue;
      }
      fn_status = fn(bc);
      if (!fn_status.ok()) {
        stream->Stop();
        break;
      }
    }
  }
  Result<net::Response> r = sent.get();
  if (ignored) *ignored = skipped;
  if (!fn_status.ok()) return fn_status;
  if (!stream->error().ok()) return stream->error().WithContext("GRIN " + what);
  if (!r.ok()) return r.status();
  if (r->http_status != 200) return r->ToStatus().WithContext("GRIN " + what);
  if (!r->transport_status.ok()) return r->transport_status.WithContext("GRIN " + what);
  net::Response head;
  head.http_status = 200;
  head.body = stream->head();
  GRIN_RETURN_IF_ERROR(CheckUnavailablePage(head, what));
  if (skipped > 0) {
    logger_->Log(LogLevel::kWarning, "grin.text_list.lines_ignored",
                 {{"list", "_" + std::string(list)},
                  {"count", std::to_string(skipped)},
                  {"first", first_skipped},
                  {"note", list == "converted" ? "lines without .tar.gz.gpg are not archives"
                                               : "lines without a barcode"}});
  }
  return Status::Ok();
}

std::vector<std::vector<std::string>> GrinClient::SplitForSearch(
    const std::vector<std::string>& barcodes) const {
  const size_t prefix =
      (DirectoryUrl() + "_barcode_search?execute_query=true&format=text&mode=full&barcodes=").size();
  std::vector<std::vector<std::string>> out;
  size_t len = prefix;
  for (const auto& bc : barcodes) {
    const size_t add = PercentEncode(bc).size() + 1;
    if (out.empty() || (len + add > options_.max_url_length && !out.back().empty())) {
      out.emplace_back();
      len = prefix;
    }
    out.back().push_back(bc);
    len += add;
  }
  return out;
}

Result<EnrichmentResult> GrinClient::BarcodeSearch(const std::vector<std::string>& barcodes) {
  std::string url = DirectoryUrl() + "_barcode_search?execute_query=true&format=text&mode=full&barcodes=";
  for (size_t i = 0; i < barcodes.size(); ++i) {
    if (i) url += '+';
    url += PercentEncode(barcodes[i]);
  }
  if (url.size() > options_.max_url_length && barcodes.size() > 1) {
    return Status::InvalidArgument("_barcode_search URL too long; split with SplitForSearch");
  }
  net::Request req;
  req.url = url;
  req.sink = net::ResponseSink::Memory(64 << 20);
  req.label = "grin.barcode_search";
  MakePatient(&req, /*list=*/false);
  const std::string what = "_barcode_search (" + std::to_string(barcodes.size()) + " barcodes)";
  GRIN_ASSIGN_OR_RETURN(net::Response r, Send(std::move(req)));
  if (r.http_status != 200) return r.ToStatus().WithContext("GRIN " + what);
  GRIN_RETURN_IF_ERROR(CheckUnavailablePage(r, what));
  GRIN_ASSIGN_OR_RETURN(BarcodeSearchReply reply, ParseBarcodeSearchReply(r.body, what));
  EnrichmentResult out;
  out.skipped_rows = reply.skipped_rows;
  for (const auto& line : reply.skipped_samples) {
    logger_->Log(LogLevel::kWarning, "grin.barcode_search.row_skipped",
                 {{"request", what}, {"reason", "no barcode"}, {"row", line}});
  }
  std::vector<std::string> seen;
  for (auto& row : reply.rows) {
    seen.push_back(row.barcode);
    out.found.push_back(EnrichmentResult::Row{std::move(row.barcode), std::move(row.columns)});
  }
  std::sort(seen.begin(), seen.end());
  for (const auto& bc : barcodes) {
    std::string up = bc;
    std::transform(up.begin(), up.end(), up.begin(), ::toupper);
    if (!std::binary_search(seen.begin(), seen.end(), bc) &&
        !std::binary_search(seen.begin(), seen.end(), up)) {
      out.missing.push_back(bc);
    }
  }
  return out;
}

std::vector<std::vector<std::string>> GrinClient::SplitForProcess(
    const std::vector<std::string>& barcodes, size_t max_batch) const {
  const size_t prefix = (DirectoryUrl() + "_process?barcodes=").size();
  std::vector<std::vector<std::string>> out;
  size_t len = prefix;
  for (const auto& bc : barcodes) {
    const size_t add = PercentEncode(bc).size() + 3;  // "%2C" worst case
    if (out.empty() || out.back().size() >= max_batch ||
        (len + add > options_.max_url_length && !out.back().empty())) {
      out.emplace_back();
      len = prefix;
    }
    out.back().push_back(bc);
    len += add;
  }
  return out;
}

Result<ProcessResult> GrinClient::Process(const std::vector<std::string>& barcodes) {
  std::string url = DirectoryUrl() + "_process?barcodes=";
  for (size_t i = 0; i < barcodes.size(); ++i) {
    if (i) url += ',';
    url += PercentEncode(barcodes[i]);
  }
  if (url.size() > options_.max_url_length) {
    return Status::InvalidArgument("_process URL too long; split with SplitForProcess");
  }
  const std::string what = "_process (" + std::to_string(barcodes.size()) + " barcodes)";
  net::Response r;
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int attempt = 1;; ++attempt) {
    net::Request req;
    req.url = url;
    req.sink = net::ResponseSink::Memory(16 << 20);
    req.label = "grin.process";
    // Retries are decided here, not by the transport: a 429 without Retry-After is GRIN's full
    // queue, never "retry".
    net::RetryOptions no_retry;
    no_retry.max_attempts = 1;
    req.retry = no_retry;
    req.throttle_is_answer = true;  // ...nor slow down the host's archive downloads
    GRIN_ASSIGN_OR_RETURN(r, Send(std::move(req)));
    const std::optional<std::string> retry_after = net::FindHeader(r.headers, "Retry-After");
    if (r.http_status < 500 && !(r.http_status == 429 && retry_after)) break;
    const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    net::RetryDecision d =
        net::DecideRetry(options_.patience, attempt, 0, r.http_status,
                         retry_after ? std::optional<std::string_view>(*retry_after)
                                     : std::nullopt,
                         now_us, u(rng), nullptr);
    if (!d.retry) break;
    logger_->Log(LogLevel::kWarning, "grin.process.retry",
                 {{"request", what}, {"attempt", std::to_string(attempt)}, {"why", d.reason}});
    std::this_thread::sleep_for(std::chrono::milliseconds(d.delay_ms));
  }
  ProcessResult out;
  if (r.http_status == 429) {
    out.queue_full = true;
    return out;
  }
  if (r.http_status != 200) return r.ToStatus().WithContext("GRIN " + what);
  GRIN_ASSIGN_OR_RETURN(out.rows, ParseProcessReply(r.body, what));
  std::vector<std::string> answered;
  for (const auto& row : out.rows) answered.push_back(row.barcode);
  std::sort(answered.begin(), answered.end());
  for (const auto& bc : barcodes) {
    if (!std::binary_search(answered.begin(), answered.end(), bc)) out.unanswered.push_back(bc);
  }
  return out;
}

Result<std::map<std::string, FailedBook>> GrinClient::LoadKnownFailures(int page_size) {
  std::map<std::string, FailedBook> out;
  const std::string dir = options_.directory;
  Status s = ForEachListPage(ListUrl("failed", page_size), [&](const ListPage& page) {
    for (const auto& row : page.rows) {
      const std::string bc = row.Barcode(dir);
      if (!PlausibleBarcode(bc)) {
        logger_->Log(LogLevel::kWarning, "grin.list.row_skipped",
                     {{"page", PageName(page.url)}, {"reason", "implausible barcode"},
                      {"row", row.Text()}});
        continue;
      }
      // By label keyword: "Convert Failed Date", "Convert Failed Info", "Detailed Convert Failed
      // Info" (labels may vary a little; the order of the columns may too).
      FailedBook f;
      for (size_t i = 0; row.keys && i < row.keys->size() && i < row.cells.size(); ++i) {
        const std::string& k = (*row.keys)[i];
        if (k.find("fail") == std::string::npos) continue;
        if (k.find("detail") != std::string::npos) {
          f.detail = row.cells[i];
        } else if (k.find("date") != std::string::npos) {
          f.date = GrinDateToIso(row.cells[i]);
        } else if (k.find("info") != std::string::npos) {
          f.info = row.cells[i];
        }
      }
      out[bc] = std::move(f);
    }
    return Status::Ok();
  });
  if (!s.ok()) return s.WithContext("GRIN _failed list");
  return out;
}

Result<ArchiveHead> GrinClient::HeadArchive(const std::string& barcode) {
  net::Request req;
  req.method = net::Method::kHead;
  req.url = DirectoryUrl() + PercentEncode(barcode) + ".tar.gz.gpg";
  req.sink = net::ResponseSink::Discard();
  req.label = "grin.head";
  GRIN_ASSIGN_OR_RETURN(net::Response r, Send(std::move(req)));
  if (r.http_status == 404) return Status::NotFound("no archive for " + barcode + " in GRIN");
  if (r.http_status != 200) return r.ToStatus().WithContext("GRIN HEAD " + barcode);
  ArchiveHead h;
  h.etag = UnquoteETag(net::FindHeader(r.headers, "ETag").value_or(""));
  auto len = net::FindHeader(r.headers, "Content-Length");
  if (len) h.size = std::strtoll(len->c_str(), nullptr, 10);
  h.last_modified = net::FindHeader(r.headers, "Last-Modified").value_or("");
  return h;
}

net::Request GrinClient::ArchiveRequest(const std::string& barcode, net::ResponseSink sink) const {
  net::Request req;
  req.url = DirectoryUrl() + PercentEncode(barcode) + ".tar.gz.gpg";
  req.sink = std::move(sink);
  req.label = "grin.archive";
  AttachAuth(&req);
  return req;
}

Result<ArchiveHead> GrinClient::CheckArchiveResponse(const net::Response& r) const {
  if (!r.transport_status.ok()) return r.transport_status;
  const std::string location = net::FindHeader(r.headers, "Location").value_or("");
  if (r.http_status == 401 || IsLoginRedirect(r.http_status, location)) {
    return Status::PermissionDenied("GRIN refused the access token (HTTP " +
                                    std::to_string(r.http_status) + ")");
  }
  if (r.http_status == 403) return Status::PermissionDenied(kAccessListMessage);
  if (r.http_status == 404) return Status::NotFound("archive not in GRIN (HTTP 404)");
  if (r.http_status >= 300 && r.http_status < 400) {
    return Status::Unavailable("archive redirected to " + location);
  }
  if (r.http_status != 200 && r.http_status != 206) return r.ToStatus();
  ArchiveHead h;
  auto etag = net::FindHeader(r.headers, "ETag");
  if (!etag || UnquoteETag(*etag).empty()) {
    return Status::DataLoss("archive response without an ETag");
  }
  h.etag = UnquoteETag(*etag);
  auto len = net::FindHeader(r.headers, "Content-Length");
  if (len) h.size = std::strtoll(len->c_str(), nullptr, 10);
  h.last_modified = net::FindHeader(r.headers, "Last-Modified").value_or("");
  return h;
}

}  // namespace grin::grin_client
