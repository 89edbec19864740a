#pragma once
// METS/MARC: checks that an XML member really is a METS document and extracts the MARC fields
// the reference tool stores in its `marc_*` columns (docs/compatibility.md, MARC columns), with two
// deliberate differences: dates are kept as the data dictionary says ("four-digit year, 9999, or
// empty" — no "999" filter), and 008 positions are read from the unstripped field.
//
// Parsing uses libxml2 with no network (XML_PARSE_NONET), no entity substitution (no
// XML_PARSE_NOENT), no DTD loading, no XML_PARSE_HUGE, and refuses any document that declares
// entities, so entity-expansion bombs and external entities fail cleanly.
//
// Thread safety: ParseMets may run on several threads at once.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/base/result.h"

namespace grin::archive {

inline constexpr const char* kMetsNamespace = "http://www.loc.gov/METS/";
inline constexpr const char* kMarcNamespace = "http://www.loc.gov/MARC21/slim";

struct MarcRecord {
  std::optional<std::string> control_number;    // 001
  std::optional<std::string> date_type;         // 008/06
  std::optional<std::string> date_1;            // 008/07-10: four digits (incl. 9999) or null
  std::optional<std::string> date_2;            // 008/11-14: same rule
  std::optional<std::string> language;          // 008/35-37
  std::optional<std::string> lccn;              // 010 $a (first)
  std::optional<std::string> lc_call_number;    // 050 $a (all, ", ")
  std::optional<std::string> isbn;              // 020 $a (all)
  std::optional<std::string> oclc_numbers;      // 035 $a containing "(OCoLC)" (all)
  std::optional<std::string> title;             // 245 $a (first)
  std::optional<std::string> title_remainder;   // 245 $b (first)
  std::optional<std::string> author_personal;   // 100 $a (first)
  std::optional<std::string> author_corporate;  // 110 $a (first)
  std::optional<std::string> author_meeting;    // 111 $a (first)
  std::optional<std::string> subjects;          // 650 $a (all, trailing periods stripped)
  std::optional<std::string> genres;            // 655 $a (all, trailing periods stripped)
  std::optional<std::string> general_note;      // 500 $a (all)

  // ("marc_control_number", value) ... in the books table's column order.
  std::vector<std::pair<std::string, std::optional<std::string>>> Columns() const;
};

struct MetsDocument {
  std::optional<MarcRecord> marc;  // nullopt: METS without a MARC record in a dmdSec
};

// kDataLoss "malformed XML: ..." for anything libxml2 rejects (including entity declarations);
// kNotFound "not a METS document (root ...)" if the root is not mets:mets.
Result<MetsDocument> ParseMets(std::string_view xml);

}  // namespace grin::archive
