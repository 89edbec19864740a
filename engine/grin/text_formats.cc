#include "engine/grin/text_formats.h"

#include <algorithm>
#include <cctype>

#include "engine/books_columns.h"
#include "engine/grin/html_list.h"

namespace grin::grin_client {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\n')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\xef')) {
    // A UTF-8 BOM (EF BB BF) at the very start is dropped too.
    if (s.front() == '\xef' && s.size() >= 3 && s[1] == '\xbb' && s[2] == '\xbf') {
      s.remove_prefix(3);
    } else if (s.front() == ' ') {
      s.remove_prefix(1);
    } else {
      break;
    }
  }
  return s;
}

bool Digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return false;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

}  // namespace

std::string GrinDateToIso(std::string_view d) {
  while (!d.empty() && d.back() == ' ') d.remove_suffix(1);
  while (!d.empty() && d.front() == ' ') d.remove_prefix(1);
  if (d.empty()) return "";
  const bool date_ok = Digits(d, 0, 4) && (d.size() >= 10) && (d[4] == '/' || d[4] == '-') &&
                       d[7] == d[4] && Digits(d, 5, 2) && Digits(d, 8, 2);
  if (!date_ok) return std::string(d);
  std::string out = std::string(d.substr(0, 4)) + "-" + std::string(d.substr(5, 2)) + "-" +
                    std::string(d.substr(8, 2)) + "T";
  if (d.size() == 10) return out + "00:00:00";
  if (d.size() >= 16 && (d[10] == ' ' || d[10] == 'T') && Digits(d, 11, 2) && d[13] == ':' &&
      Digits(d, 14, 2)) {
    std::string secs = "00";
    if (d.size() >= 19 && d[16] == ':' && Digits(d, 17, 2)) secs = std::string(d.substr(17, 2));
    return out + std::string(d.substr(11, 5)) + ":" + secs;
  }
  return std::string(d);
}

Status LineSplitter::Emit(std::string_view line) {
  line = Trim(line);
  if (line.empty()) return Status::Ok();
  return fn_(line);
}

Status LineSplitter::Feed(const char* data, size_t len) {
  std::string_view in(data, len);
  while (!in.empty()) {
    const size_t nl = in.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(in);
      break;
    }
    if (partial_.empty()) {
      GRIN_RETURN_IF_ERROR(Emit(in.substr(0, nl)));
    } else {
      partial_.append(in.substr(0, nl));
      GRIN_RETURN_IF_ERROR(Emit(partial_));
      partial_.clear();
    }
    in.remove_prefix(nl + 1);
  }
  return Status::Ok();
}

Status LineSplitter::Finish() {
  if (partial_.empty()) return Status::Ok();
  std::string last = std::move(partial_);
  partial_.clear();
  return Emit(last);
}

std::string BarcodeFromListLine(std::string_view line, std::string_view dir) {
  line = line.substr(0, line.find('\t'));
  line = Trim(line);
  const std::string_view kSuffix = ".tar.gz.gpg";
  if (line.size() > kSuffix.size() && line.substr(line.size() - kSuffix.size()) == kSuffix) {
    line.remove_suffix(kSuffix.size());
  }
  if (!dir.empty() && line.size() > dir.size() + 1 && line.substr(0, dir.size()) == dir &&
      line[dir.size()] == '_') {
    line.remove_prefix(dir.size() + 1);
  }
  return std::string(line);
}

bool PlausibleBarcode(std::string_view bc) {
  if (bc.size() < 3 || bc.size() > 50) return false;
  return std::all_of(bc.begin(), bc.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::string BarcodeOfListEntry(std::string_view list, std::string_view line, std::string_view dir) {
  const std::string_view kSuffix = ".tar.gz.gpg";
  std::string_view first = Trim(line.substr(0, line.find('\t')));
  if (list == "converted" &&
      (first.size() <= kSuffix.size() || first.substr(first.size() - kSuffix.size()) != kSuffix)) {
    return "";
  }
  std::string bc = BarcodeFromListLine(first, dir);
  return PlausibleBarcode(bc) ? bc : "";
}

Status TsvTable::SetHeader(std::string_view line, const std::string& what) {
  names_.clear();
  line = Trim(line);
  size_t pos = 0;
  while (pos <= line.size()) {
    size_t tab = line.find('\t', pos);
    if (tab == std::string_view::npos) tab = line.size();
    std::string_view cell = line.substr(pos, tab - pos);
    while (!cell.empty() && cell.back() == ' ') cell.remove_suffix(1);
    names_.emplace_back(cell);
    pos = tab + 1;
  }
  if (std::find(names_.begin(), names_.end(), "Barcode") == names_.end()) {
    names_.clear();
    return Status::DataLoss("malformed GRIN reply " + what + ": header has no Barcode column");
  }
  return Status::Ok();
}

std::vector<std::string> TsvTable::Split(std::string_view line) const {
  std::vector<std::string> cells;
  size_t pos = 0;
  while (pos <= line.size() && cells.size() < names_.size()) {
    size_t tab = line.find('\t', pos);
    if (tab == std::string_view::npos) tab = line.size();
    std::string_view cell = line.substr(pos, tab - pos);
    while (!cell.empty() && (cell.back() == '\r' || cell.back() == ' ')) cell.remove_suffix(1);
    cells.emplace_back(cell);
    pos = tab + 1;
  }
  cells.resize(names_.size());
  return cells;
}

int TsvTable::Index(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

std::string_view ProcessOutcomeName(ProcessOutcome o) {
  switch (o) {
    case ProcessOutcome::kRequested: return "requested";
    case ProcessOutcome::kAlreadyInProcess: return "in_process";
    case ProcessOutcome::kAlreadyAvailable: return "already_available";
    case ProcessOutcome::kNotAllowed: return "not_allowed";
    case ProcessOutcome::kOther: return "other";
  }
  return "other";
}

ProcessOutcome ClassifyProcessStatus(std::string_view status) {
  const std::string s = Lower(status);
  if (s == "success") return ProcessOutcome::kRequested;
  if (s.find("already") != std::string::npos) {
    if (s.find("process") != std::string::npos || s.find("being converted") != std::string::npos) {
      return ProcessOutcome::kAlreadyInProcess;
    }
    if (s.find("available") != std::string::npos) return ProcessOutcome::kAlreadyAvailable;
  }
  if (s.find("not allowed") != std::string::npos) return ProcessOutcome::kNotAllowed;
  return ProcessOutcome::kOther;
}

Result<std::vector<ProcessRow>> ParseProcessReply(std::string_view body, const std::string& what) {
  std::vector<ProcessRow> rows;
  std::string_view t = Trim(body);
  if (!t.empty() && t.front() == '<') {
    ParsedListPage page;
    // The HTML reply is a table without tr.heading; parse cells with the same SAX parser by
    // treating every row as data: wrap it so the first row acts as the heading.
    std::string html(body);
    const size_t first_tr = html.find("<tr>");
    if (first_tr == std::string::npos) {
      return Status::DataLoss("malformed GRIN reply " + what + ": no table rows");
    }
    html.replace(first_tr, 4, "<tr class=\"heading\">");
    GRIN_RETURN_IF_ERROR(ParseListPage(html, what, &page));
    for (const auto& cells : page.rows) {
      if (cells.size() < 2) continue;
      ProcessRow r{std::string(Trim(cells[0])), std::string(Trim(cells[1])),
                   ClassifyProcessStatus(Trim(cells[1]))};
      if (r.barcode.empty()) continue;
      for (size_t i = 2; i < cells.size(); ++i) {
        r.extra.emplace_back(i < page.keys.size() ? page.keys[i] : "column " + std::to_string(i + 1),
                             cells[i]);
      }
      rows.push_back(std::move(r));
    }
    return rows;
  }
  std::vector<std::string> names;
  int barcode_col = -1, status_col = -1;
  LineSplitter lines([&](std::string_view line) {
    if (names.empty()) {
      size_t p = 0;
      while (true) {
        const size_t tab = line.find('\t', p);
        names.emplace_back(Trim(line.substr(p, tab == std::string_view::npos ? tab : tab - p)));
        const std::string low = Lower(names.back());
        if (low == "barcode" && barcode_col < 0) barcode_col = static_cast<int>(names.size()) - 1;
        if (low == "status" && status_col < 0) status_col = static_cast<int>(names.size()) - 1;
        if (tab == std::string_view::npos) break;
        p = tab + 1;
      }
      if (barcode_col < 0 || status_col < 0) {
        return Status::DataLoss("malformed GRIN reply " + what +
                                ": expected a header with Barcode and Status columns, got '" +
                                std::string(line.substr(0, 80)) + "'");
      }
      return Status::Ok();
    }
    std::vector<std::string_view> cells;
    size_t p = 0;
    while (true) {
      const size_t tab = line.find('\t', p);
      cells.push_back(line.substr(p, tab == std::string_view::npos ? tab : tab - p));
      if (tab == std::string_view::npos) break;
      p = tab + 1;
    }
    auto cell = [&](int i) {
      return i < static_cast<int>(cells.size()) ? Trim(cells[static_cast<size_t>(i)])
                                                : std::string_view();
    };
    ProcessRow r;
    r.barcode = std::string(cell(barcode_col));
    if (r.barcode.empty()) return Status::Ok();
    r.status = std::string(cell(status_col));
    r.outcome = ClassifyProcessStatus(r.status);
    for (size_t i = 0; i < cells.size(); ++i) {
      if (static_cast<int>(i) == barcode_col || static_cast<int>(i) == status_col) continue;
      r.extra.emplace_back(i < names.size() ? names[i] : "column " + std::to_string(i + 1),
                           std::string(Trim(cells[i])));
    }
    rows.push_back(std::move(r));
    return Status::Ok();
  });
  GRIN_RETURN_IF_ERROR(lines.Feed(body.data(), body.size()));
  GRIN_RETURN_IF_ERROR(lines.Finish());
  if (names.empty()) return Status::DataLoss("malformed GRIN reply " + what + ": empty");
  return rows;
}

Result<BarcodeSearchReply> ParseBarcodeSearchReply(std::string_view body, const std::string& what) {
  BarcodeSearchReply out;
  TsvTable table;
  int barcode_col = -1;
  LineSplitter lines([&](std::string_view line) -> Status {
    if (!table.has_header()) {
      GRIN_RETURN_IF_ERROR(table.SetHeader(line, what));
      barcode_col = table.Index("Barcode");
      return Status::Ok();
    }
    std::vector<std::string> cells = table.Split(line);
    std::string bc = cells[static_cast<size_t>(barcode_col)];
    while (!bc.empty() && bc.front() == ' ') bc.erase(0, 1);
    if (!PlausibleBarcode(bc)) {
      ++out.skipped_rows;
      if (out.skipped_samples.size() < 5) {
        std::string shown(line.substr(0, 200));
        for (size_t i = shown.find('\t'); i != std::string::npos; i = shown.find('\t', i)) {
          shown.replace(i, 1, " | ");
        }
        out.skipped_samples.push_back(std::move(shown));
      }
      return Status::Ok();
    }
    out.rows.push_back({std::move(bc), MapEnrichmentRow(table, cells)});
    return Status::Ok();
  });
  GRIN_RETURN_IF_ERROR(lines.Feed(body.data(), body.size()));
  GRIN_RETURN_IF_ERROR(lines.Finish());
  if (!table.has_header()) return Status::DataLoss("malformed GRIN reply " + what + ": empty");
  return out;
}

std::vector<std::pair<std::string, std::string>> MapEnrichmentRow(
    const TsvTable& table, const std::vector<std::string>& cells) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const BooksColumn* c : EnrichmentColumns()) {
    const int i = table.Index(c->grin_label);
    if (i < 0 || static_cast<size_t>(i) >= cells.size()) continue;
    const std::string& cell = cells[static_cast<size_t>(i)];
    out.emplace_back(std::string(c->name), c->grin_date ? GrinDateToIso(cell) : cell);
  }
  return out;
}

}  // namespace grin::grin_client
