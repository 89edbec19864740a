#include "engine/books_columns.h"

namespace grin {
namespace {

// Shorthands for the table below.
BooksColumn Plain(std::string_view name, std::string_view header) { return {name, header}; }
BooksColumn Grin(std::string_view name, std::string_view header, std::string_view label,
                 bool date = false) {
  return {name, header, label, date};
}
BooksColumn Sync(std::string_view name, std::string_view header) {
  return {name, header, {}, false, true};
}
BooksColumn Marc(std::string_view name, std::string_view header) {
  return {name, header, {}, false, true, true};
}
BooksColumn Date(std::string_view name, std::string_view header, std::string_view label) {
  return {name, header, label, true};
}

}  // namespace

const std::vector<BooksColumn>& BooksColumns() {
  static const std::vector<BooksColumn> kColumns = {
      Plain("barcode", "Barcode"),
      Plain("title", "Title"),
      Date("scanned_date", "Scanned Date", "Scanned Date"),
      Date("converted_date", "Converted Date", "Converted Date"),
      Date("downloaded_date", "Downloaded Date", "Downloaded Date"),
      Date("processed_date", "Processed Date", "Processed Date"),
      Date("analyzed_date", "Analyzed Date", "Analyzed Date"),
      Date("ocr_date", "OCR Date", "OCR'd Date"),
      Plain("google_books_link", "Google Books Link"),
      Sync("processing_request_timestamp", "Processing Request Timestamp"),
      Grin("grin_state", "GRIN State", "State"),
      Grin("grin_viewability", "GRIN Viewability", "Viewability"),
      Grin("grin_opted_out", "GRIN Opted Out", "Opted-Out (post-scan)"),
      Grin("grin_conditions", "GRIN Conditions", "Conditions"),
      Grin("grin_scannable", "GRIN Scannable", "Scannable"),
      Grin("grin_tagging", "GRIN Tagging", "Tagging"),
      Grin("grin_audit", "GRIN Audit", "Audit"),
      Grin("grin_material_error_percent", "GRIN Material Error %", "Material Error%"),
      Grin("grin_overall_error_percent", "GRIN Overall Error %", "Overall Error%"),
      Grin("grin_claimed", "GRIN Claimed", "Claimed"),
      Grin("grin_ocr_analysis_score", "GRIN OCR Analysis Score", "OCR Analysis Score"),
      Grin("grin_ocr_gtd_score", "GRIN OCR GTD Score", "OCR GTD Score"),
      Grin("grin_digitization_method", "GRIN Digitization Method", "Digitization Method"),
      Date("grin_check_in_date", "GRIN Check-In Date", "Check-In Date"),
      Grin("grin_source_library_bibkey", "GRIN Source Library Bibkey", "Source Library Bibkey"),
      Grin("grin_rubbish", "GRIN Rubbish", "Rubbish"),
      Date("grin_allow_download_updated_date", "GRIN Allow Download Updated Date",
           "Allow Download Updated Date"),
      Date("grin_viewability_updated_date", "GRIN Viewability Updated Date",
           "Viewability Updated Date"),
      Plain("enrichment_timestamp", "Enrichment Timestamp"),
      Marc("marc_control_number", "MARC Control Number"),
      Marc("marc_date_type", "MARC Date Type"),
      Marc("marc_date_1", "MARC Date 1"),
      Marc("marc_date_2", "MARC Date 2"),
      Marc("marc_language", "MARC Language"),
      Marc("marc_lccn", "MARC LCCN"),
      Marc("marc_lc_call_number", "MARC LC Call Number"),
      Marc("marc_isbn", "MARC ISBN"),
      Marc("marc_oclc_numbers", "MARC OCLC Numbers"),
      Marc("marc_title", "MARC Title"),
      Marc("marc_title_remainder", "MARC Title Remainder"),
      Marc("marc_author_personal", "MARC Author Personal"),
      Marc("marc_author_corporate", "MARC Author Corporate"),
      Marc("marc_author_meeting", "MARC Author Meeting"),
      Marc("marc_subjects", "MARC Subjects"),
      Marc("marc_genres", "MARC Genres"),
      Marc("marc_general_note", "MARC General Note"),
      Sync("marc_extraction_timestamp", "MARC Extraction Timestamp"),
      Sync("storage_path", "Storage Path"),
      Sync("last_etag_check", "Last ETag Check"),
      Sync("encrypted_etag", "Encrypted ETag"),
      Sync("is_decrypted", "Is Decrypted"),
      Sync("sync_timestamp", "Sync Timestamp"),
      Plain("created_at", "Created At"),
      Plain("updated_at", "Updated At"),
      // After the reference tool's columns, so its positions stay: GRIN's _failed details (0007).
      {"grin_convert_failed_date", "GRIN Convert Failed Date", {}, /*grin_date=*/true},
      Plain("grin_convert_failed_info", "GRIN Convert Failed Info"),
      Plain("grin_detailed_convert_failed_info", "GRIN Detailed Convert Failed Info"),
  };
  return kColumns;
}

const BooksColumn* FindBooksColumn(std::string_view name) {
  for (const BooksColumn& c : BooksColumns()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

const std::vector<const BooksColumn*>& EnrichmentColumns() {
  static const std::vector<const BooksColumn*> kEnrich = [] {
    std::vector<const BooksColumn*> out;
    for (const BooksColumn& c : BooksColumns()) {
      if (!c.grin_label.empty()) out.push_back(&c);
    }
    return out;
  }();
  return kEnrich;
}

const std::vector<std::string_view>& MarcFieldColumns() {
  static const std::vector<std::string_view> kMarc = [] {
    std::vector<std::string_view> out;
    for (const BooksColumn& c : BooksColumns()) {
      if (c.marc_field) out.push_back(c.name);
    }
    return out;
  }();
  return kMarc;
}

}  // namespace grin
