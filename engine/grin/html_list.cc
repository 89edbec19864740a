#include "engine/grin/html_list.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace grin::grin_client {

std::string NormalizeLabel(std::string_view label) {
  std::string out;
  bool space = false;
  for (char c : label) {
    if (c == '\'') continue;
    if (c == ' ' || c == '-' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += '_';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string ResolveUrl(std::string_view page_url, std::string_view href) {
  if (href.rfind("http://", 0) == 0 || href.rfind("https://", 0) == 0) return std::string(href);
  const size_t scheme = page_url.find("://");
  const size_t path_start =
      scheme == std::string_view::npos ? 0 : page_url.find('/', scheme + 3);
  const std::string_view origin =
      path_start == std::string_view::npos ? page_url : page_url.substr(0, path_start);
  std::string out;
  if (href.rfind("//", 0) == 0) {
    out.append(page_url.substr(0, scheme + 1));
    out.append(href);
    return out;
  }
  out.append(origin);
  if (!href.empty() && href[0] == '/') {
    out.append(href);
    return out;
  }
  std::string_view path = path_start == std::string_view::npos ? "/" : page_url.substr(path_start);
  path = path.substr(0, path.find_first_of("?#"));
  if (!href.empty() && href[0] == '?') {
    out.append(path);
    out.append(href);
    return out;
  }
  out.append(path.substr(0, path.rfind('/') + 1));
  out.append(href);
  return out;
}

namespace {
const std::string kEmpty;

std::string Collapse(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// "\xc2\xa0" (&nbsp;) is whitespace to a reader; collapse it too.
std::string CollapseNbsp(const std::string& s) {
  std::string plain;
  plain.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\xc2' && i + 1 < s.size() && s[i + 1] == '\xa0') {
      plain.push_back(' ');
      ++i;
    } else {
      plain.push_back(s[i]);
    }
  }
  return Collapse(plain);
}

const char* Attr(const xmlChar** atts, const char* name) {
  if (!atts) return nullptr;
  for (int i = 0; atts[i]; i += 2) {
    if (xmlStrcasecmp(atts[i], reinterpret_cast<const xmlChar*>(name)) == 0) {
      return atts[i + 1] ? reinterpret_cast<const char*>(atts[i + 1]) : "";
    }
  }
  return nullptr;
}

bool Is(const xmlChar* name, const char* what) {
  return xmlStrcasecmp(name, reinterpret_cast<const xmlChar*>(what)) == 0;
}
}  // namespace

bool ReadableBarcode(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

namespace {
const std::string& CellOf(const ListRow& row, const std::vector<std::string>& values,
                          std::string_view key) {
  if (!row.keys) return kEmpty;
  for (size_t i = 0; i < row.keys->size() && i < values.size(); ++i) {
    if ((*row.keys)[i] == key) return values[i];
  }
  return kEmpty;
}
}  // namespace

const std::string& ListRow::Get(std::string_view key) const { return CellOf(*this, cells, key); }

const std::string& ListRow::Href(std::string_view key) const { return CellOf(*this, hrefs, key); }

bool ListRow::Has(std::string_view key) const {
  return keys && std::find(keys->begin(), keys->end(), key) != keys->end();
}

std::string ListRow::Barcode(std::string_view dir) const {
  std::string bc = checkbox;
  bool file_name = false;
  if (bc.empty()) bc = Get("barcode");
  if (bc.empty()) {
    bc = Get("filename");
    file_name = true;
  }
  const std::string_view kSuffix = ".tar.gz.gpg";
  if (bc.size() > kSuffix.size() &&
      bc.compare(bc.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0) {
    bc.resize(bc.size() - kSuffix.size());
    file_name = true;
  }
  if (file_name && !dir.empty() && bc.size() > dir.size() + 1 &&
      bc.compare(0, dir.size(), dir) == 0 && bc[dir.size()] == '_') {
    bc = bc.substr(dir.size() + 1);
  }
  return bc;
}

std::string ListRow::Text() const {
  std::string out;
  for (const auto& c : cells) {
    if (c.empty()) continue;
    if (!out.empty()) out += " | ";
    out += c;
    if (out.size() > 200) break;
  }
  if (out.empty() && !checkbox.empty()) out = "checkbox " + checkbox;
  if (out.size() > 200) out = out.substr(0, 200) + "...";
  return out;
}

struct HtmlListParser::State {
  std::string page_url;
  RowFn on_row;
  htmlParserCtxtPtr ctxt = nullptr;
  Status status;
  // Table tracking.
  int table_depth = 0;       // nesting depth of <table> elements
  int data_table_depth = 0;  // depth of the data table once found (0 = not yet)
  bool data_table_done = false;
  bool in_heading = false;
  bool in_row = false;
  bool in_cell = false;
  std::string cell_text, cell_href;
  int hd3_depth = 0;     // >0 inside a heading cell's <span class="hd3"> (nested spans counted)
  std::string hd3_text;  // that span's text: the label
  std::vector<std::string> keys;
  ListRow row;
  int64_t rows = 0;
  int64_t skipped = 0;
  std::vector<std::string> skipped_samples;
  // Links.
  bool in_a = false;
  std::string a_href, a_text;
  std::string next_url;
  // Unavailable-page detection: look for the phrase in text outside the table.
  std::string tail;  // last few bytes of text, for phrases split across callbacks
  bool unavailable = false;

  void StartElement(const xmlChar* name, const xmlChar** atts) {
    if (Is(name, "table")) {
      ++table_depth;
    } else if (Is(name, "tr")) {
      const char* cls = Attr(atts, "class");
      if (!data_table_done && cls && std::strstr(cls, "heading") && data_table_depth == 0) {
        data_table_depth = table_depth;
        in_heading = true;
        row.cells.clear();
        row.hrefs.clear();
      } else if (data_table_depth > 0 && !data_table_done && table_depth == data_table_depth) {
        in_row = true;
        row.cells.clear();
        row.hrefs.clear();
        row.checkbox.clear();
      }
    } else if ((Is(name, "td") || Is(name, "th")) && (in_heading || in_row) &&
               table_depth == data_table_depth) {
      in_cell = true;
      cell_text.clear();
      cell_href.clear();
      hd3_depth = 0;
      hd3_text.clear();
    } else if (Is(name, "span") && in_heading && in_cell) {
      const char* cls = Attr(atts, "class");
      if (hd3_depth > 0) {
        ++hd3_depth;
      } else if (cls && std::strstr(cls, "hd3") && hd3_text.empty()) {
        hd3_depth = 1;
      }
    } else if (Is(name, "input") && in_row) {
      const char* n = Attr(atts, "name");
      const char* v = Attr(atts, "value");
      if (n && v && std::strcmp(n, "barcodes") == 0) row.checkbox = Collapse(v);
    } else if (Is(name, "a")) {
      const char* href = Attr(atts, "href");
      if (in_cell && href && cell_href.empty()) cell_href = href;
      in_a = true;
      a_href = href ? href : "";
      a_text.clear();
    }
  }

  void EndElement(const xmlChar* name) {
    if (Is(name, "table")) {
      if (data_table_depth > 0 && table_depth == data_table_depth) data_table_done = true;
      if (table_depth > 0) --table_depth;
    } else if (Is(name, "span") && hd3_depth > 0) {
      --hd3_depth;
    } else if ((Is(name, "td") || Is(name, "th")) && in_cell) {
      in_cell = false;
      // A heading's label is its hd3 span's text when it has one; a cell's value is its text.
      // Never an href: links (sort links, search links) say nothing about the value.
      std::string text = CollapseNbsp(in_heading ? (hd3_text.empty() ? cell_text : hd3_text)
                                                 : cell_text);
      row.cells.push_back(std::move(text));
      row.hrefs.push_back(cell_href);
      hd3_depth = 0;
    } else if (Is(name, "tr")) {
      if (in_heading) {
        in_heading = false;
        keys.clear();
        for (const auto& c : row.cells) keys.push_back(NormalizeLabel(c));
        row.keys = &keys;
      } else if (in_row) {
        in_row = false;
        if (row.cells.size() >= 2) EmitRow();
      }
    } else if (Is(name, "a") && in_a) {
      in_a = false;
      std::string text = Collapse(a_text);
      std::transform(text.begin(), text.end(), text.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      // "Next", "next page", "Next &gt;", "Next >", "NEXT", an arrow (">" or the "»" of &raquo;).
      const bool looks_next = text.find("next") != std::string::npos ||
                              text.find('>') != std::string::npos ||
                              text.find("\xc2\xbb") != std::string::npos;
      const bool pages = a_href.find("first=") != std::string::npos ||
                         a_href.find("ctoken=") != std::string::npos;
      if (looks_next && pages && next_url.empty()) next_url = ResolveUrl(page_url, a_href);
    }
  }

  void Characters(const xmlChar* ch, int len) {
    const char* p = reinterpret_cast<const char*>(ch);
    if (in_cell) cell_text.append(p, static_cast<size_t>(len));
    if (hd3_depth > 0) hd3_text.append(p, static_cast<size_t>(len));
    if (in_a) a_text.append(p, static_cast<size_t>(len));
    if (!unavailable && data_table_depth == 0) {
      tail.append(p, static_cast<size_t>(len));
      if (tail.find("Your request is unavailable") != std::string::npos) unavailable = true;
      if (tail.size() > 64) tail.erase(0, tail.size() - 64);
    }
  }

  void EmitRow() {
    if (!status.ok()) return;
    // Pad short rows so every key has a cell.
    while (row.cells.size() < keys.size()) row.cells.emplace_back();
    while (row.hrefs.size() < row.cells.size()) row.hrefs.emplace_back();
    if (!ReadableBarcode(row.Barcode())) {
      // A select-all or totals row, or one GRIN could not fill in: one odd row never fails a
      // page. Counted, and shown to the caller (who warns) by its text.
      ++skipped;
      if (skipped_samples.size() < kMaxSkippedSamples) skipped_samples.push_back(row.Text());
      return;
    }
    ++rows;
    status = on_row(row);
    if (!status.ok()) xmlStopParser(ctxt);
  }
};

namespace {
HtmlListParser::State* StateOf(void* ctx) {
  auto* c = static_cast<htmlParserCtxtPtr>(ctx);
  return static_cast<HtmlListParser::State*>(c->_private);
}
void OnStart(void* ctx, const xmlChar* name, const xmlChar** atts) {
  StateOf(ctx)->StartElement(name, atts);
}
void OnEnd(void* ctx, const xmlChar* name) { StateOf(ctx)->EndElement(name); }
void OnChars(void* ctx, const xmlChar* ch, int len) { StateOf(ctx)->Characters(ch, len); }
void OnSilence(void*, const char*, ...) {}
}  // namespace

HtmlListParser::HtmlListParser(std::string page_url, RowFn on_row) : s_(std::make_unique<State>()) {
  s_->page_url = std::move(page_url);
  s_->on_row = std::move(on_row);
  s_->row.keys = &s_->keys;
  htmlSAXHandler sax;
  std::memset(&sax, 0, sizeof sax);
  sax.startElement = OnStart;
  sax.endElement = OnEnd;
  sax.characters = OnChars;
  sax.cdataBlock = OnChars;
  sax.warning = OnSilence;
  sax.error = OnSilence;
  // user_data null: libxml2 then passes the parser context to the callbacks.
  s_->ctxt = htmlCreatePushParserCtxt(&sax, nullptr, nullptr, 0, s_->page_url.c_str(),
                                      XML_CHAR_ENCODING_UTF8);
  if (s_->ctxt) {
    s_->ctxt->_private = s_.get();
    htmlCtxtUseOptions(s_->ctxt, HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                     HTML_PARSE_RECOVER | HTML_PARSE_NOBLANKS);
  } else {
    s_->status = Status::Internal("cannot create an HTML parser");
  }
}

HtmlListParser::~HtmlListParser() {
  if (s_->ctxt) {
    if (s_->ctxt->myDoc) xmlFreeDoc(s_->ctxt->myDoc);
    htmlFreeParserCtxt(s_->ctxt);
  }
}

Status HtmlListParser::Feed(const char* data, size_t len) {
  if (!s_->status.ok()) return s_->status;
  // htmlParseChunk takes an int length; feed large buffers in slices.
  while (len > 0 && s_->status.ok()) {
    const int n = static_cast<int>(std::min<size_t>(len, 1 << 20));
    htmlParseChunk(s_->ctxt, data, n, 0);
    data += n;
    len -= static_cast<size_t>(n);
  }
  return s_->status;
}

Status HtmlListParser::Finish() {
  if (!s_->status.ok()) return s_->status;
  htmlParseChunk(s_->ctxt, nullptr, 0, 1);
  if (!s_->status.ok()) return s_->status;
  if (s_->unavailable) return Status::Ok();
  if (s_->data_table_depth == 0) {
    return Status::DataLoss("malformed GRIN page " + s_->page_url +
                            ": no results table (tr.heading) found");
  }
  if (s_->rows == 0 && s_->skipped > 0) {
    return Status::DataLoss("malformed GRIN page " + s_->page_url + ": none of its " +
                            std::to_string(s_->skipped) + " rows has a readable barcode (first: '" +
                            s_->skipped_samples.front() + "')");
  }
  return Status::Ok();
}

bool HtmlListParser::unavailable() const { return s_->unavailable; }
const std::vector<std::string>& HtmlListParser::keys() const { return s_->keys; }
const std::string& HtmlListParser::next_url() const { return s_->next_url; }
int64_t HtmlListParser::rows() const { return s_->rows; }
int64_t HtmlListParser::skipped_rows() const { return s_->skipped; }
const std::vector<std::string>& HtmlListParser::skipped_samples() const {
  return s_->skipped_samples;
}

Status ParseListPage(std::string_view html, const std::string& page_url, ParsedListPage* out) {
  *out = ParsedListPage{};
  HtmlListParser p(page_url, [out](const ListRow& row) {
    out->rows.push_back(row.cells);
    out->hrefs.push_back(row.hrefs);
    out->barcodes.push_back(row.Barcode());
    return Status::Ok();
  });
  GRIN_RETURN_IF_ERROR(p.Feed(html.data(), html.size()));
  GRIN_RETURN_IF_ERROR(p.Finish());
  out->keys = p.keys();
  out->next_url = p.next_url();
  out->unavailable = p.unavailable();
  out->skipped_rows = p.skipped_rows();
  return Status::Ok();
}

}  // namespace grin::grin_client
