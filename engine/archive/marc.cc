#include "engine/archive/marc.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>

#include "engine/base/fn_deleter.h"
#include "engine/books_columns.h"

namespace grin::archive {
namespace {

using XmlDoc = std::unique_ptr<xmlDoc, FnDeleter<xmlFreeDoc>>;
using XmlParserCtxt = std::unique_ptr<xmlParserCtxt, FnDeleter<xmlFreeParserCtxt>>;

// xmlFree is a variable holding a function pointer, not a function: wrap it.
void FreeXmlChars(xmlChar* p) { xmlFree(p); }
using XmlString = std::unique_ptr<xmlChar, FnDeleter<FreeXmlChars>>;

bool Is(const xmlNode* n, const char* ns, const char* name) {
  return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
         std::strcmp(reinterpret_cast<const char*>(n->ns->href), ns) == 0 &&
         std::strcmp(reinterpret_cast<const char*>(n->name), name) == 0;
}

std::string Attr(const xmlNode* n, const char* name) {
  XmlString v(xmlGetProp(n, reinterpret_cast<const xmlChar*>(name)));
  return v ? reinterpret_cast<const char*>(v.get()) : "";
}

std::string Content(const xmlNode* n) {
  XmlString v(xmlNodeGetContent(n));
  return v ? reinterpret_cast<const char*>(v.get()) : "";
}

std::string Strip(std::string s) {
  const char* ws = " \t\r\n\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// The first mets:dmdSec/mets:mdWrap/mets:xmlData/slim:record in document order.
const xmlNode* FindMarcRecord(const xmlNode* n) {
  for (; n; n = n->next) {
    if (n->type != XML_ELEMENT_NODE) continue;
    if (Is(n, kMetsNamespace, "dmdSec")) {
      for (const xmlNode* w = n->children; w; w = w->next) {
        if (!Is(w, kMetsNamespace, "mdWrap")) continue;
        for (const xmlNode* d = w->children; d; d = d->next) {
          if (!Is(d, kMetsNamespace, "xmlData")) continue;
          for (const xmlNode* r = d->children; r; r = r->next) {
            if (Is(r, kMarcNamespace, "record")) return r;
          }
        }
      }
    }
    if (const xmlNode* found = FindMarcRecord(n->children)) return found;
  }
  return nullptr;
}

std::optional<std::string> NonEmpty(std::string s) {
  if (s.empty()) return std::nullopt;
  return s;
}

class RecordReader {
 public:
  explicit RecordReader(const xmlNode* record) : record_(record) {}

  std::optional<std::string> ControlField(const char* tag, bool strip) const {
    for (const xmlNode* f = record_->children; f; f = f->next) {
      if (Is(f, kMarcNamespace, "controlfield") && Attr(f, "tag") == tag) {
        std::string v = Content(f);
        return NonEmpty(strip ? Strip(v) : v);
      }
    }
    return std::nullopt;
  }

  // Every non-empty (stripped) $code of every `tag` field, in order.
  std::vector<std::string> Subfields(const char* tag, const char* code) const {
    std::vector<std::string> out;
    for (const xmlNode* f = record_->children; f; f = f->next) {
      if (!Is(f, kMarcNamespace, "datafield") || Attr(f, "tag") != tag) continue;
      for (const xmlNode* s = f->children; s; s = s->next) {
        if (Is(s, kMarcNamespace, "subfield") && Attr(s, "code") == code) {
          std::string v = Strip(Content(s));
          if (!v.empty()) out.push_back(std::move(v));
        }
      }
    }
    return out;
  }

  std::optional<std::string> First(const char* tag, const char* code) const {
    auto all = Subfields(tag, code);
    if (all.empty()) return std::nullopt;
    return all.front();
  }

  std::optional<std::string> Joined(const char* tag, const char* code, bool strip_periods,
                                    const char* must_contain = nullptr) const {
    std::string out;
    for (std::string v : Subfields(tag, code)) {
      if (strip_periods) {
        while (!v.empty() && v.back() == '.') v.pop_back();
      }
      if (v.empty()) continue;
      if (must_contain && v.find(must_contain) == std::string::npos) continue;
      if (!out.empty()) out += ", ";
      out += v;
    }
    return NonEmpty(out);
  }

 private:
  const xmlNode* record_;
};

// 008 dates: "Four-digit year, 9999, or empty" (the reference tool's data dictionary).
std::optional<std::string> Date008(const std::string& f, size_t pos) {
  if (f.size() < pos + 4) return std::nullopt;
  std::string d = f.substr(pos, 4);
  for (char c : d) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return d;
}

MarcRecord ReadRecord(const xmlNode* record) {
  RecordReader r(record);
  MarcRecord m;
  m.control_number = r.ControlField("001", /*strip=*/true);
  // 008 is positional: read it unstripped (stripping would shift nothing at the front in
  // practice, but a stripped trailing blank would hide the language at 35-37).
  if (auto f = r.ControlField("008", /*strip=*/false)) {
    if (f->size() > 6 && (*f)[6] != ' ') m.date_type = f->substr(6, 1);
    m.date_1 = Date008(*f, 7);
    m.date_2 = Date008(*f, 11);
    if (f->size() >= 38 && f->substr(35, 3) != "   ") m.language = f->substr(35, 3);
  }
  m.lccn = r.First("010", "a");
  m.lc_call_number = r.Joined("050", "a", false);
  m.isbn = r.Joined("020", "a", false);
  m.oclc_numbers = r.Joined("035", "a", false, "(OCoLC)");
  m.title = r.First("245", "a");
  m.title_remainder = r.First("245", "b");
  m.author_personal = r.First("100", "a");
  m.author_corporate = r.First("110", "a");
  m.author_meeting = r.First("111", "a");
  m.subjects = r.Joined("650", "a", true);
  m.genres = r.Joined("655", "a", true);
  m.general_note = r.Joined("500", "a", false);
  return m;
}

// SAX hook: any entity declaration stops the parse. GRIN's METS has no reason to declare
// entities; refusing them outright is simpler and safer than bounding their expansion.
void RefuseEntityDecl(void* ctx, const xmlChar*, int, const xmlChar*, const xmlChar*, xmlChar*) {
  auto* ctxt = static_cast<xmlParserCtxtPtr>(ctx);
  ctxt->_private = reinterpret_cast<void*>(1);
  xmlStopParser(ctxt);
}

void InitLibxml() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

}  // namespace

std::vector<std::pair<std::string, std::optional<std::string>>> MarcRecord::Columns() const {
  // The fields in the order of their columns in engine/books_columns.h.
  const std::optional<std::string>* const fields[] = {
      &control_number, &date_type,       &date_1,          &date_2,           &language,
      &lccn,           &lc_call_number,  &isbn,            &oclc_numbers,     &title,
      &title_remainder, &author_personal, &author_corporate, &author_meeting, &subjects,
      &genres,         &general_note};
  const std::vector<std::string_view>& names = MarcFieldColumns();
  std::vector<std::pair<std::string, std::optional<std::string>>> out;
  for (size_t i = 0; i < names.size() && i < std::size(fields); ++i) {
    out.emplace_back(std::string(names[i]), *fields[i]);
  }
  return out;
}

Result<MetsDocument> ParseMets(std::string_view xml) {
  InitLibxml();
  if (xml.size() > static_cast<size_t>(INT32_MAX)) {
    return Status::ResourceExhausted("XML document too large");
  }
  XmlParserCtxt ctxt(xmlNewParserCtxt());
  if (!ctxt) return Status::Internal("xmlNewParserCtxt failed");
  ctxt->sax->entityDecl = &RefuseEntityDecl;
  ctxt->_private = nullptr;
  // Deliberately absent: XML_PARSE_NOENT, XML_PARSE_DTDLOAD, XML_PARSE_DTDATTR,
  // XML_PARSE_DTDVALID, XML_PARSE_XINCLUDE, XML_PARSE_HUGE.
  const int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                      XML_PARSE_NOCDATA;
  XmlDoc doc(xmlCtxtReadMemory(ctxt.get(), xml.data(), static_cast<int>(xml.size()), "mets.xml",
                               nullptr, options));
  if (ctxt->_private != nullptr) {
    return Status::DataLoss("malformed XML: entity declarations are not allowed");
  }
  if (!doc || !ctxt->wellFormed) {
    const xmlError* e = xmlCtxtGetLastError(ctxt.get());
    std::string msg = e && e->message ? Strip(e->message) : "parse error";
    if (e) msg += " at line " + std::to_string(e->line);
    return Status::DataLoss("malformed XML: " + msg);
  }
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!Is(root, kMetsNamespace, "mets")) {
    std::string got = root ? reinterpret_cast<const char*>(root->name) : "none";
    if (root && root->ns && root->ns->href) {
      got = std::string("{") + reinterpret_cast<const char*>(root->ns->href) + "}" + got;
    }
    return Status::NotFound("not a METS document (root element " + got + ")");
  }
  MetsDocument out;
  if (const xmlNode* record = FindMarcRecord(root)) out.marc = ReadRecord(record);
  return out;
}

}  // namespace grin::archive
