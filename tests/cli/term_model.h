#pragma once
// A tiny terminal model for tests that run grin-jobs on a pseudo-terminal: a cols x rows screen
// that understands what the CLI writes (printable UTF-8, \r, \n, \b, \t, CSI K/J/H/A/B/C/D/G and
// SGR colours, which it ignores) with xterm's auto-wrap (a character written when the cursor is
// past the last column wraps to the next row; `wraps` counts those). Rows that scroll off the top
// go to `history`.

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace grin::testing {

class TermModel {
 public:
  TermModel(int cols, int rows)
      : cols_(cols), rows_(rows),
        screen_(static_cast<size_t>(rows), Row(static_cast<size_t>(cols), " ")) {}

  void Feed(std::string_view bytes) {
    for (char ch : bytes) Byte(static_cast<unsigned char>(ch));
  }

  // The screen's rows, trailing blanks trimmed.
  std::vector<std::string> Screen() const {
    std::vector<std::string> out;
    for (const auto& r : screen_) out.push_back(Text(r));
    return out;
  }
  // History and screen, in order, without the screen's trailing empty rows.
  std::vector<std::string> AllLines() const {
    std::vector<std::string> out = history;
    auto s = Screen();
    while (!s.empty() && s.back().empty()) s.pop_back();
    out.insert(out.end(), s.begin(), s.end());
    return out;
  }
  // Columns a rendered line occupies (UTF-8 characters).
  static int Columns(std::string_view line) {
    int n = 0;
    for (unsigned char c : line) n += (c & 0xC0) != 0x80;
    return n;
  }

  std::vector<std::string> history;
  int wraps = 0;

 private:
  using Row = std::vector<std::string>;

  static std::string Text(const Row& r) {
    std::string s;
    for (const auto& c : r) s += c;
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }

  void LineFeed() {
    if (row_ + 1 < rows_) {
      ++row_;
      return;
    }
    history.push_back(Text(screen_.front()));
    screen_.erase(screen_.begin());
    screen_.push_back(Row(static_cast<size_t>(cols_), " "));
  }

  void EraseRow(int r, int from, int to) {
    for (int c = from; c < to && c < cols_; ++c) screen_[static_cast<size_t>(r)][static_cast<size_t>(c)] = " ";
  }

  void Csi(char final) {
    std::vector<int> p;
    int cur = -1;
    for (char c : params_) {
      if (c >= '0' && c <= '9') {
        cur = (cur < 0 ? 0 : cur * 10) + (c - '0');
      } else if (c == ';') {
        p.push_back(cur);
        cur = -1;
      }
    }
    p.push_back(cur);
    auto arg = [&p](size_t i, int def) { return i < p.size() && p[i] >= 0 ? p[i] : def; };
    int n = arg(0, 1) > 0 ? arg(0, 1) : 1;
    switch (final) {
      case 'K': {
        int mode = arg(0, 0);
        if (mode == 0) EraseRow(row_, std::min(col_, cols_), cols_);
        if (mode == 1) EraseRow(row_, 0, std::min(col_ + 1, cols_));
        if (mode == 2) EraseRow(row_, 0, cols_);
        break;
      }
      case 'J': {
        int mode = arg(0, 0);
        if (mode == 0) {
          EraseRow(row_, std::min(col_, cols_), cols_);
          for (int r = row_ + 1; r < rows_; ++r) EraseRow(r, 0, cols_);
        } else if (mode == 2 || mode == 3) {
          for (int r = 0; r < rows_; ++r) EraseRow(r, 0, cols_);
        }
        break;
      }
      case 'H':
      case 'f':
        row_ = std::clamp(arg(0, 1), 1, rows_) - 1;
        col_ = std::clamp(arg(1, 1), 1, cols_) - 1;
        break;
      case 'A': row_ = std::max(0, row_ - n); break;
      case 'B': row_ = std::min(rows_ - 1, row_ + n); break;
      case 'C': col_ = std::min(cols_ - 1, col_ + n); break;
      case 'D': col_ = std::max(0, std::min(col_, cols_ - 1) - n); break;
      case 'G': col_ = std::clamp(arg(0, 1), 1, cols_) - 1; break;
      default: break;  // 'm' (colours) and the rest: no effect on the text
    }
  }

  void Byte(unsigned char c) {
    if (state_ == kEsc) {
      if (c == '[') {
        state_ = kCsi;
        params_.clear();
      } else {
        state_ = kNormal;  // a two-byte escape: ignored
      }
      return;
    }
    if (state_ == kCsi) {
      if (c >= 0x40 && c <= 0x7E) {
        Csi(static_cast<char>(c));
        state_ = kNormal;
      } else {
        params_ += static_cast<char>(c);
      }
      return;
    }
    switch (c) {
      case 0x1B: state_ = kEsc; return;
      case '\r': col_ = 0; return;
      case '\n': LineFeed(); return;
      case '\b': col_ = std::max(0, std::min(col_, cols_ - 1) - 1); return;
      case '\t': col_ = std::min(cols_ - 1, (col_ / 8 + 1) * 8); return;
      case 0x07: return;
      default: break;
    }
    if (c < 0x20 || c == 0x7F) return;
    if ((c & 0xC0) == 0x80) {  // a UTF-8 continuation: part of the previous character
      if (last_row_ >= 0) screen_[static_cast<size_t>(last_row_)][static_cast<size_t>(last_col_)] += static_cast<char>(c);
      return;
    }
    if (col_ >= cols_) {  // auto-wrap
      ++wraps;
      col_ = 0;
      LineFeed();
    }
    screen_[static_cast<size_t>(row_)][static_cast<size_t>(col_)] = std::string(1, static_cast<char>(c));
    last_row_ = row_;
    last_col_ = col_;
    ++col_;
  }

  enum State { kNormal, kEsc, kCsi };
  int cols_, rows_;
  std::vector<Row> screen_;
  int row_ = 0, col_ = 0;
  int last_row_ = -1, last_col_ = 0;
  State state_ = kNormal;
  std::string params_;
};

}  // namespace grin::testing
