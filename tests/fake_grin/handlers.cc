// FakeGrinServer: the GRIN endpoints (docs/grin-protocol.md, The fake GRIN server: Endpoints).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>

#include "tests/fake_grin/server_impl.h"

namespace grin::fake {
namespace {

struct Column {
  std::string label;
  // The cell's HTML (already escaped) for a book.
  std::function<std::string(const BookRecord&)> html;
};

std::string Text(const std::string& s) { return HtmlEscape(s); }
std::string Date(int64_t t) { return FormatGrinDate(t); }

std::vector<Column> ColumnsFor(const std::string& kind) {
  std::vector<Column> cols;
  auto title = Column{"Title", [](const BookRecord& b) { return Text(b.title); }};
  auto barcode = Column{"Barcode", [](const BookRecord& b) { return Text(b.barcode); }};
  if (kind == "all_books") {
    cols = {barcode, title,
            {"Scanned Date", [](const BookRecord& b) { return Date(b.scanned); }},
            {"Processed Date", [](const BookRecord& b) { return Date(b.processed); }},
            {"Analyzed Date", [](const BookRecord& b) { return Date(b.analyzed); }},
            {"Converted Date", [](const BookRecord& b) { return Date(b.converted); }},
            {"Downloaded Date", [](const BookRecord& b) { return Date(b.downloaded); }},
            {"OCR'd Date", [](const BookRecord& b) { return Date(b.ocr); }},
            {"Google Books",
             [](const BookRecord& b) {
               return "<a href=\"" + Text(b.google_books_link) + "\">View</a>";
             }},
            {"State", [](const BookRecord& b) { return Text(b.state); }}};
  } else if (kind == "converted") {
    cols = {{"Filename", [](const BookRecord& b) { return Text(b.barcode) + ".tar.gz.gpg"; }},
            title,
            {"Scanned Date", [](const BookRecord& b) { return Date(b.scanned); }},
            {"Converted Date", [](const BookRecord& b) { return Date(b.converted); }}};
  } else if (kind == "failed") {
    cols = {barcode, title,
            {"Convert Failed Date", [](const BookRecord& b) { return Date(b.status_at); }},
            {"Convert Failed Info", [](const BookRecord& b) { return Text(b.failed_info); }},
            {"Detailed Convert Failed Info",
             [](const BookRecord& b) { return Text(b.failed_detail); }}};
  } else if (kind == "in_process") {
    cols = {barcode, title,
            {"Process Requested Date", [](const BookRecord& b) { return Date(b.status_at); }}};
  } else {  // available
    cols = {barcode, title,
            {"Scanned Date", [](const BookRecord& b) { return Date(b.scanned); }},
            {"State", [](const BookRecord& b) { return Text(b.state); }}};
  }
  return cols;
}

ConvertStatus StatusOfList(const std::string& kind) {
  if (kind == "converted") return ConvertStatus::kConverted;
  if (kind == "in_process") return ConvertStatus::kInProcess;
  if (kind == "failed") return ConvertStatus::kFailed;
  return ConvertStatus::kAvailable;
}

const uint64_t kCtokenMask = 0x5a5a17c3e1ULL;

// "CT<first ^ mask>.<issued>" in hex: opaque to the client, and dated so it can expire.
std::string MakeCtoken(int64_t first, int64_t issued_s) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "CT%llx.%llx",
                static_cast<unsigned long long>(static_cast<uint64_t>(first) ^ kCtokenMask),
                static_cast<unsigned long long>(issued_s));
  return buf;
}

int64_t ParseInt(const std::string& s, int64_t def) {
  if (s.empty()) return def;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  return (end && *end == '\0') ? v : def;
}

// The 25 `mode=full` columns (the 23 of the 2014 fixture plus OCR'd Date and Digitization
// Method), each with its value.
std::vector<std::pair<std::string, std::function<std::string(const BookRecord&)>>> SearchColumns() {
  return {
      {"Barcode", [](const BookRecord& b) { return b.barcode; }},
      {"Check-In Date", [](const BookRecord& b) { return Date(b.check_in); }},
      {"State", [](const BookRecord& b) { return b.state; }},
      {"Viewability", [](const BookRecord& b) { return b.viewability; }},
      {"Conditions", [](const BookRecord& b) { return b.conditions; }},
      {"Scannable", [](const BookRecord& b) { return b.scannable; }},
      {"Opted-Out (post-scan)", [](const BookRecord& b) { return b.opted_out; }},
      {"Tagging", [](const BookRecord& b) { return b.tagging; }},
      {"Audit", [](const BookRecord& b) { return b.audit; }},
      {"Material Error%", [](const BookRecord& b) { return b.material_error; }},
      {"Overall Error%", [](const BookRecord& b) { return b.overall_error; }},
      {"Scanned Date", [](const BookRecord& b) { return Date(b.scanned); }},
      {"Processed Date", [](const BookRecord& b) { return Date(b.processed); }},
      {"Analyzed Date", [](const BookRecord& b) { return Date(b.analyzed); }},
      {"Converted Date", [](const BookRecord& b) { return Date(b.converted); }},
      {"Allow Download Updated Date",
       [](const BookRecord& b) { return Date(b.allow_download_updated); }},
      {"Viewability Updated Date", [](const BookRecord& b) { return Date(b.viewability_updated); }},
      {"Source Library Bibkey", [](const BookRecord& b) { return b.bibkey; }},
      {"Rubbish", [](const BookRecord& b) { return b.rubbish; }},
      {"Downloaded Date", [](const BookRecord& b) { return Date(b.downloaded); }},
      {"Claimed", [](const BookRecord& b) { return b.claimed; }},
      {"OCR GTD Score", [](const BookRecord& b) { return b.ocr_gtd; }},
      {"OCR Analysis Score", [](const BookRecord& b) { return b.ocr_analysis; }},
      {"OCR'd Date", [](const BookRecord& b) { return Date(b.ocr); }},
      {"Digitization Method", [](const BookRecord& b) { return b.digitization_method; }},
  };
}

template <typename T>
void Shuffle(std::vector<T>* v, uint64_t seed, size_t keep_first) {
  std::mt19937_64 rng(seed);
  std::shuffle(v->begin() + static_cast<std::ptrdiff_t>(keep_first), v->end(), rng);
}

}  // namespace

void FakeGrinServer::Impl::HandleProbe(RequestCtx& c) {
  Corpus* corpus = corpora[c.dir].get();
  std::string body = "Directory\t" + c.dir + Eol() + "Books\t" + std::to_string(corpus->size()) +
                     Eol() + "Converted\t" + std::to_string(corpus->Count(ConvertStatus::kConverted)) +
                     Eol() + "In process\t" +
                     std::to_string(corpus->Count(ConvertStatus::kInProcess)) + Eol();
  c.res.set_content(body, c.req.get_param_value("format") == "text" ? "text/plain" : "text/html");
}

static std::string SyntheticConvertedBarcode(int64_t i) {
  char buf[32];  // "SYN" + up to 20 digits and a sign: no truncation at any int64
  std::snprintf(buf, sizeof buf, "SYN%09lld", static_cast<long long>(i));
  return buf;
}

void FakeGrinServer::Impl::ServeSyntheticConverted(RequestCtx& c) {
  const int64_t total = opt.synthetic_converted_lines;
  const int64_t burst = std::max<int64_t>(1, opt.synthetic_converted_burst);
  const int pause_ms = opt.synthetic_converted_pause_ms;
  const std::string eol = Eol();
  // The provider is called again after each write; `next` is the next line to send. A
  // "truncate" fault closes the connection once at_byte bytes were sent (no final chunk).
  auto next = std::make_shared<int64_t>(0);
  const FaultRule* cut = c.Fired("truncate");
  const int64_t cut_at = cut ? cut->at_byte : -1;
  c.res.set_chunked_content_provider(
      "text/plain; charset=utf-8",
      [this, total, burst, pause_ms, eol, next, cut_at](size_t offset, httplib::DataSink& sink) {
        if (cut_at >= 0 && static_cast<int64_t>(offset) >= cut_at) return false;
        if (*next >= total) {
          sink.done();
          return true;
        }
        if (*next % burst == 0 && pause_ms > 0) {  // silence before every burst, the first too
          std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
        }
        // Up to 4,096 lines per write, never across a burst boundary.
        const int64_t end = std::min({total, *next + 4'096, (*next / burst + 1) * burst});
        std::string chunk;
        chunk.reserve(static_cast<size_t>(end - *next) * 24);
        for (int64_t i = *next; i < end; ++i) {
          chunk += SyntheticConvertedBarcode(i) + ".tar.gz.gpg" + eol;
        }
        *next = end;
        {
          std::lock_guard<std::mutex> l(stats_mu);
          stats.bytes_served += static_cast<int64_t>(chunk.size());
        }
        return sink.write(chunk.data(), chunk.size());
      });
}

void FakeGrinServer::Impl::HandleList(RequestCtx& c) {
  Corpus* corpus = corpora[c.dir].get();
  const auto& q = c.req;
  const bool text = q.get_param_value("format") == "text";
  const std::string kind = c.endpoint;
  int64_t first = ParseInt(q.get_param_value("first"), 0);
  if (q.has_param("ctoken")) {
    const std::string t = q.get_param_value("ctoken");
    const size_t dot = t.find('.');
    if (t.size() < 3 || t.compare(0, 2, "CT") != 0 || dot == std::string::npos) {
      return SetErrorPage(c.res, 400, "bad ctoken");
    }
    first = static_cast<int64_t>(std::strtoull(t.c_str() + 2, nullptr, 16) ^ kCtokenMask);
    const int64_t issued = static_cast<int64_t>(std::strtoull(t.c_str() + dot + 1, nullptr, 16));
    if (opt.ctoken_ttl_s > 0 && Now() - issued > opt.ctoken_ttl_s) {
      return SetUnavailablePage(c.res);  // an expired continuation token
    }
  }
  if (const FaultRule* f = c.Fired("shift_rows")) first = std::max<int64_t>(0, first + f->shift);
  int64_t count = ParseInt(q.get_param_value("result_count"),
                           text ? -1 : static_cast<int64_t>(opt.default_page_size));
  if (count == 0) count = opt.default_page_size;

  std::vector<int64_t> idx;
  int64_t total = 0;
  if (kind == "all_books") {
    total = corpus->size();
    int64_t end = count < 0 ? total : std::min(total, first + count);
    for (int64_t i = std::max<int64_t>(first, 0); i < end; ++i) idx.push_back(i);
  } else {
    idx = corpus->List(StatusOfList(kind), first, count, &total);
  }
  if (c.Fired("empty")) {
    idx.clear();
    total = 0;
  }
  const std::string eol = Eol();
  if (c.Fired("malformed")) {
    c.res.set_content(text ? "<html><body>Temporarily garbled</body></html>\n"
                           : "<html><body><table><tr><td>garbled</td><td>page</td></tr></table>"
                             "</body></html>\n",
                      text ? "text/plain" : "text/html");
    return;
  }

  if (text && kind == "converted" && opt.synthetic_converted_lines > 0) {
    ServeSyntheticConverted(c);
    return;
  }
  if (text) {
    std::string body;
    body.reserve(idx.size() * 24);
    const bool mode_all = kind == "all_books" && q.get_param_value("mode") == "all";
    const bool filtered = kind == "all_books" && q.get_param_value("execute_query") == "true";
    if (filtered) {
      body += "Barcode\tState\tScanned Date\tTitle" + eol;
      const std::string from = q.get_param_value("last_scan_date_start");
      const std::string to = q.get_param_value("last_scan_date_end");
      for (int64_t i : idx) {
        BookRecord b = corpus->Get(i);
        std::string day = Date(b.scanned).substr(0, 10);  // YYYY/MM/DD
        std::replace(day.begin(), day.end(), '/', '-');
        if (!from.empty() && day < from) continue;
        if (!to.empty() && day > to) continue;
        body += b.barcode + "\t" + b.state + "\t" + Date(b.scanned) + "\t" + b.title + eol;
      }
    } else if (mode_all) {
      if (opt.all_books_text_header) {
        body += "Barcode\tScanned Date\tProcessed Date\tAnalyzed Date\tConverted Date\t"
                "Downloaded Date" + eol;
      }
      for (int64_t i : idx) {
        BookRecord b = corpus->Get(i);
        body += b.barcode + "\t" + Date(b.scanned) + "\t" + Date(b.processed) + "\t" +
                Date(b.analyzed) + "\t" + Date(b.converted) + "\t" + Date(b.downloaded) + eol;
      }
    } else {
      const bool junk = kind == "converted" && opt.converted_junk_lines;
      if (junk) body += "Filename" + eol;
      for (int64_t i : idx) {
        std::string bc = Corpus::BarcodeAt(i);
        if (junk && i % 7 == 3) body += "<p>" + bc + " pending</p>" + eol;
        if (kind == "converted") {
          body += (opt.converted_dir_prefix ? c.dir + "_" : "") + bc + ".tar.gz.gpg";
        } else if (kind == "in_process" && opt.in_process_filename_form) {
          body += bc + ".tar.gz.gpg";
        } else {
          body += bc;
        }
        body += eol;
      }
      // A bare barcode is not a file name: a book that is not (yet) downloadable.
      if (junk) body += "39015999999999" + eol + "Total: " + std::to_string(idx.size()) + eol;
    }
    if (opt.crlf) body += eol;  // the "trailing blank line" variant rides with CRLF
    c.res.set_content(body, "text/plain; charset=utf-8");
    return;
  }

  // HTML: the §4 table.
  std::vector<Column> cols = ColumnsFor(kind);
  if (opt.html_columns == "extra") {
    cols.insert(cols.begin() + 1,
                Column{"Volume", [](const BookRecord& b) { return "v." + std::to_string(b.pages); }});
    cols.push_back(Column{"Notes", [](const BookRecord&) { return std::string("&nbsp;"); }});
  } else if (opt.html_columns == "shuffle") {
    Shuffle(&cols, opt.corpus.seed, 0);
  }
  std::string body;
  body.reserve(idx.size() * 400 + 1024);
  body += "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + c.dir + " _" + kind +
          "</title></head><body>\n<div id=\"Main\"><form action=\"_process\" method=\"post\">\n"
          "<table class=\"resultsTable\">\n<thead><tr class=\"heading\"><td></td>";
  for (size_t k = 0; k < cols.size(); ++k) {
    const std::string label = "<span class=\"hd3\">" + Text(cols[k].label) + "</span>";
    // An opaque sort URL per column, like the live site's.
    body += opt.sort_link_headings
                ? "<td><a href=\"_" + kind + "?sort=" + MakeCtoken(static_cast<int64_t>(k), 7) +
                      "&amp;dir=a\">" + label + "</a></td>"
                : "<td>" + label + "</td>";
  }
  body += "</tr></thead>\n<tbody>\n";
  const std::string span = std::to_string(cols.size());
  if (opt.select_all_row && !idx.empty()) {
    body += "<tr><td><input type=\"checkbox\" name=\"select_all\" onclick=\"toggle(this)\"></td>"
            "<td colspan=\"" + span + "\">Select all</td></tr>\n";
  }
  const bool bad_row = c.Fired("bad_row") != nullptr;
  for (size_t k = 0; k < idx.size(); ++k) {
    BookRecord b = corpus->Get(idx[k]);
    if (bad_row && k == idx.size() / 2) b.barcode = "bad barcode!";
    body += "<tr><td><input type=\"checkbox\" name=\"barcodes\" value=\"" + HtmlEscape(b.barcode) + "\"></td>";
    for (const auto& col : cols) {
      std::string cell = col.html(b);
      if (opt.barcode_cell_links &&
          (col.label == "Barcode" || col.label == "Filename" || col.label == "Title")) {
        // The live site links these cells to other views; the href is never the value.
        cell = "<a href=\"" +
               HtmlEscape(col.label == "Title" ? "_book?id=" + MakeCtoken(idx[k], 3)
                                               : "_barcode_search?execute_query=true&barcodes=" +
                                                     b.barcode) +
               "\">" + cell + "</a>";
      }
      body += "<td>" + cell + "</td>";
    }
    body += "</tr>\n";
  }
  if (opt.select_all_row && !idx.empty()) {
    body += "<tr><td></td><td colspan=\"" + span + "\">Total: " + std::to_string(total) +
            " books</td></tr>\n";
  }
  body += "</tbody></table></form>\n";
  const int64_t next = first + static_cast<int64_t>(idx.size());
  if (count > 0 && next < total && !c.Fired("drop_next")) {
    std::string query = "result_count=" + std::to_string(count) + "&" +
                        (opt.use_ctoken ? "ctoken=" + MakeCtoken(next, Now())
                                        : "first=" + std::to_string(next));
    std::string href = "_" + kind + "?" + query;
    if (opt.next_href_style == "root") {
      href = "/libraries/" + c.dir + "/" + href;
    } else if (opt.next_href_style == "absolute") {
      href = origin + "/libraries/" + c.dir + "/" + href;
    }
    body += "<div class=\"paging\"><a href=\"" + HtmlEscape(href) + "\">" + opt.next_link_text +
            "</a></div>\n";
  }
  body += "</div></body></html>\n";
  c.res.set_content(body, "text/html; charset=utf-8");
}

void FakeGrinServer::Impl::HandleBarcodeSearch(RequestCtx& c) {
  Corpus* corpus = corpora[c.dir].get();
  auto cols = SearchColumns();
  if (opt.tsv_columns == "shuffle") {
    Shuffle(&cols, opt.corpus.seed, 0);
  } else if (opt.tsv_columns == "extra") {
    cols.insert(cols.begin() + 3, {"Shelf Mark", [](const BookRecord& b) {
                                     return "SM-" + b.barcode.substr(9);
                                   }});
    cols.push_back({"Future Column", [](const BookRecord&) { return std::string("x"); }});
  } else if (opt.tsv_columns == "drop") {
    cols.erase(std::remove_if(cols.begin(), cols.end(),
                              [](const auto& col) {
                                return col.first == "Audit" || col.first == "OCR'd Date";
                              }),
               cols.end());
  }
  const std::string eol = Eol();
  if (c.Fired("malformed")) {
    c.res.set_content("<html><body>garbled</body></html>\n", "text/plain");
    return;
  }
  std::string body;
  for (size_t k = 0; k < cols.size(); ++k) {
    if (k) body += '\t';
    body += cols[k].first;
  }
  body += eol;
  bool empty_row_sent = false;
  for (const auto& bc : c.barcodes) {
    std::string up = bc;
    std::transform(up.begin(), up.end(), up.begin(), ::toupper);
    {
      std::lock_guard<std::mutex> l(stats_mu);
      ++BarcodeLocked(c.dir, up).searched;
    }
    auto idx = corpus->IndexOf(up);
    if (!idx || corpus->UnknownToSearch(*idx)) continue;  // unknown barcodes are simply absent
    BookRecord b = corpus->Get(*idx);
    for (size_t k = 0; k < cols.size(); ++k) {
      if (k) body += '\t';
      body += cols[k].second(b);
    }
    body += eol;
    if (opt.search_empty_barcode_row && !empty_row_sent) {
      empty_row_sent = true;
      // A row GRIN could not fill in: no barcode, the rest of it still there.
      for (size_t k = 0; k < cols.size(); ++k) {
        if (k) body += '\t';
        if (cols[k].first != "Barcode") body += cols[k].second(b);
      }
      body += eol;
    }
  }
  c.res.set_content(body, "text/plain; charset=utf-8");
}

void FakeGrinServer::Impl::HandleMonthlyReport(RequestCtx& c) {
  Corpus* corpus = corpora[c.dir].get();
  const std::string from = c.req.get_param_value("check_in_date_start");
  const std::string to = c.req.get_param_value("check_in_date_end");
  const std::string eol = Eol();
  std::string body = "Barcode\tState\tCheck-In Date" + eol;
  for (int64_t i = 0; i < corpus->size(); ++i) {
    BookRecord b = corpus->Get(i);
    std::string day = Date(b.check_in).substr(0, 10);
    std::replace(day.begin(), day.end(), '/', '-');
    if (!from.empty() && day < from) continue;  // start inclusive
    if (!to.empty() && day >= to) continue;     // end exclusive
    body += b.barcode + "\t" + b.state + "\t" + Date(b.check_in) + eol;
  }
  c.res.set_content(body, "text/plain; charset=utf-8");
}

void FakeGrinServer::Impl::HandleProcess(RequestCtx& c) {
  Corpus* corpus = corpora[c.dir].get();
  if (c.barcodes.empty()) return SetErrorPage(c.res, 400, "no barcodes");
  if (static_cast<int>(c.barcodes.size()) > opt.max_batch) {
    return SetErrorPage(c.res, 400, "too many barcodes in one request");
  }
  {
    std::lock_guard<std::mutex> l(stats_mu);
    for (const auto& bc : c.barcodes) ++BarcodeLocked(c.dir, bc).process;
  }
  std::vector<ProcessRow> rows;
  std::vector<std::string> asked;
  for (const auto& bc : c.barcodes) {
    if (!opt.process_refusals.count(bc)) asked.push_back(bc);
  }
  if (!asked.empty() && !corpus->Process(asked, Now(), &rows)) {
    return SetErrorPage(c.res, 429, "The conversion queue is full.");
  }
  if (asked.size() != c.barcodes.size()) {
    // Refused books answer with their refusal text, in request order.
    std::vector<ProcessRow> all;
    size_t k = 0;
    for (const auto& bc : c.barcodes) {
      auto refusal = opt.process_refusals.find(bc);
      if (refusal != opt.process_refusals.end()) {
        all.push_back({bc, refusal->second});
      } else if (k < rows.size()) {
        all.push_back(rows[k++]);
      }
    }
    rows = std::move(all);
  }
  if (opt.process_padded_barcodes) {
    for (auto& r : rows) r.barcode = " " + r.barcode + "  ";
  }
  if (c.Fired("process_short") && !rows.empty()) rows.pop_back();
  if (c.Fired("process_unknown")) {
    for (auto& r : rows) r.status = "Temporarily deferred by quota";
  }
  if (c.req.get_param_value("process_format") == "html") {
    std::string body =
        "<html><body><div id=\"Main\"><table>\n<tr><td>Barcode</td><td>Status</td></tr>\n";
    for (const auto& r : rows) {
      body += "<tr><td>" + HtmlEscape(r.barcode) + "</td><td><div><pre>" + HtmlEscape(r.status) +
              "</pre></div></td></tr>\n";
    }
    body += "</table></div></body></html>\n";
    c.res.set_content(body, "text/html; charset=utf-8");
    return;
  }
  const std::string eol = Eol();
  const bool extra = opt.process_extra_columns;
  std::string body = std::string(extra ? "Barcode\tStatus\tRequest Id" : "Barcode\tStatus") + eol;
  for (size_t k = 0; k < rows.size(); ++k) {
    body += rows[k].barcode + "\t" + rows[k].status +
            (extra ? "\tR" + std::to_string(1000 + k) : std::string()) + eol;
  }
  c.res.set_content(body, "text/plain; charset=utf-8");
}

std::string FakeGrinServer::Impl::ETagFor(const std::string& dir, const BookRecord& b) const {
  uint64_t h = std::hash<std::string>{}(dir + "/" + b.barcode) ^ (opt.corpus.seed * 0x9e3779b97f4a7c15ULL);
  uint64_t h2 = std::hash<std::string>{}(std::to_string(h) + "/v" + std::to_string(b.version));
  char buf[40];
  std::snprintf(buf, sizeof buf, "\"%016llx%016llx\"", static_cast<unsigned long long>(h),
                static_cast<unsigned long long>(h2));
  return buf;
}

}  // namespace grin::fake
