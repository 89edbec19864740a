#include "tests/docs/guide_blocks.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <sstream>

namespace grin::guide {
namespace {

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

std::vector<std::string> SplitOn(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep)) out.push_back(item);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// Applies one marker's directives to `b`; "" or what is wrong.
std::string ApplyMarker(const std::string& directives, Block* b) {
  const std::string d = Trim(directives);
  if (d.rfind("skip", 0) == 0) {
    b->skip = true;
    b->skip_reason = Trim(d.substr(4));
    return b->skip_reason.empty() ? "skip needs a reason" : "";
  }
  for (const std::string& part : SplitOn(d, ';')) {
    const std::string p = Trim(part);
    const size_t sp = p.find(' ');
    const std::string name = p.substr(0, sp);
    const std::string arg = sp == std::string::npos ? "" : Trim(p.substr(sp + 1));
    if (arg.empty()) return "directive '" + p + "' needs a value";
    if (name == "session") {
      b->sessions.clear();
      for (const auto& s : SplitOn(arg, ',')) {
        if (Trim(s).empty()) return "an empty session name in '" + p + "'";
        b->sessions.push_back(Trim(s));
      }
    } else if (name == "exit") {
      if (!AllDigits(arg) || arg.size() > 3) return "exit needs a number, not '" + arg + "'";
      b->exit_code = std::stoi(arg);
    } else if (name == "output") {
      b->output = arg;
    } else if (name == "file") {
      b->file = arg;
    } else {
      return "unknown directive '" + name + "' (skip, session, exit, output, file)";
    }
  }
  return "";
}

// One cron time field against [lo, hi] (names: month or weekday abbreviations, lower case).
bool CronField(const std::string& field, int lo, int hi, const std::vector<std::string>& names) {
  auto value = [&](std::string v, int* out) {
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (size_t i = 0; i < names.size(); ++i) {
      if (v == names[i]) {
        *out = lo + static_cast<int>(i);
        return true;
      }
    }
    if (!AllDigits(v) || v.size() > 2) return false;
    *out = std::stoi(v);
    return *out >= lo && *out <= hi;
  };
  for (const std::string& item : SplitOn(field, ',')) {
    std::string range = item, step;
    if (size_t slash = item.find('/'); slash != std::string::npos) {
      range = item.substr(0, slash);
      step = item.substr(slash + 1);
      if (!AllDigits(step) || std::stoi(step) < 1 || std::stoi(step) > hi) return false;
    }
    if (range == "*") continue;
    int a = 0, b = 0;
    if (size_t dash = range.find('-'); dash != std::string::npos) {
      if (!value(range.substr(0, dash), &a) || !value(range.substr(dash + 1), &b) || a > b) {
        return false;
      }
    } else if (!value(range, &a) || !step.empty()) {
      return false;  // "5/10" is not cron syntax
    }
  }
  return !field.empty();
}

}  // namespace

Guide ParseGuide(const std::string& markdown) {
  Guide g;
  std::istringstream in(markdown);
  std::string line, section, pending_marker;
  int n = 0, marker_line = 0;
  bool in_block = false;
  Block cur;
  static const std::regex kMarker(R"(^\s*<!--\s*guide-test:(.*)-->\s*$)");
  while (std::getline(in, line)) {
    ++n;
    const std::string t = Trim(line);
    if (in_block) {
      if (t.rfind("```", 0) == 0 && Trim(t.substr(3)).empty()) {
        g.blocks.push_back(cur);
        in_block = false;
      } else {
        cur.text += line + "\n";
      }
      continue;
    }
    std::smatch m;
    if (std::regex_match(line, m, kMarker)) {
      if (marker_line) g.errors.push_back("line " + std::to_string(marker_line) + ": a marker not followed by a fenced block");
      pending_marker = m[1].str();
      marker_line = n;
      continue;
    }
    if (t.rfind("```", 0) == 0) {
      cur = Block();
      cur.line = n;
      std::string info = Trim(t.substr(3));
      cur.lang = info.substr(0, info.find(' '));
      cur.section = section;
      if (marker_line) {
        std::string why = ApplyMarker(pending_marker, &cur);
        if (!why.empty()) g.errors.push_back("line " + std::to_string(marker_line) + ": " + why);
      }
      marker_line = 0;
      in_block = true;
      continue;
    }
    if (t.empty()) continue;
    if (marker_line) {
      g.errors.push_back("line " + std::to_string(marker_line) +
                         ": a marker not followed by a fenced block");
      marker_line = 0;
    }
    if (t.rfind("## ", 0) == 0) section = Trim(t.substr(3));
  }
  if (in_block) g.errors.push_back("line " + std::to_string(cur.line) + ": a block never closed");
  if (marker_line) g.errors.push_back("line " + std::to_string(marker_line) + ": a marker at the end");
  return g;
}

std::string Substitute(std::string text, const std::map<std::string, std::string>& subs) {
  std::vector<std::pair<std::string, std::string>> order(subs.begin(), subs.end());
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  // One pass over the text, longest key first at each position, so a replacement is never
  // replaced again.
  std::string out;
  for (size_t i = 0; i < text.size();) {
    bool hit = false;
    for (const auto& [k, v] : order) {
      if (!k.empty() && text.compare(i, k.size(), k) == 0) {
        out += v;
        i += k.size();
        hit = true;
        break;
      }
    }
    if (!hit) out += text[i++];
  }
  return out;
}

std::vector<std::string> LogicalLines(const std::string& script) {
  std::vector<std::string> out;
  std::string acc, line;
  std::istringstream in(script);
  while (std::getline(in, line)) {
    acc += line;
    if (!line.empty() && line.back() == '\\') {
      acc += "\n";
      continue;
    }
    out.push_back(acc);
    acc.clear();
  }
  if (!acc.empty()) out.push_back(acc);
  return out;
}

std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> out;
  std::string w;
  bool have = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else {
        w += c;
      }
      continue;
    }
    if (c == '\\' && i + 1 < line.size() && line[i + 1] == '\n') {
      ++i;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      have = true;
      continue;
    }
    if (std::string(";&|<>#").find(c) != std::string::npos) break;
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (have) out.push_back(w);
      w.clear();
      have = false;
      continue;
    }
    w += c;
    have = true;
  }
  if (have) out.push_back(w);
  return out;
}

Crontab ParseCrontab(const std::string& text) {
  Crontab c;
  static const std::vector<std::string> kMonths = {"jan", "feb", "mar", "apr", "may", "jun",
                                                   "jul", "aug", "sep", "oct", "nov", "dec"};
  static const std::vector<std::string> kDays = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
  static const std::set<std::string> kSpecial = {"@reboot", "@yearly", "@annually", "@monthly",
                                                 "@weekly", "@daily", "@midnight", "@hourly"};
  static const std::regex kEnv(R"(^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$)");
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string t = Trim(line);
    const std::string where = "crontab line " + std::to_string(n) + ": ";
    if (t.empty() || t[0] == '#') continue;
    std::smatch m;
    if (std::regex_match(t, m, kEnv)) {
      c.env[m[1].str()] = m[2].str();
      continue;
    }
    std::istringstream words(t);
    std::vector<std::string> f;
    std::string w;
    const int want = t[0] == '@' ? 1 : 5;
    while (static_cast<int>(f.size()) < want && words >> w) f.push_back(w);
    std::string command;
    std::getline(words, command);
    command = Trim(command);
    if (static_cast<int>(f.size()) < want || command.empty()) {
      c.errors.push_back(where + "needs five time fields and a command");
      continue;
    }
    if (want == 1) {
      if (!kSpecial.count(f[0])) c.errors.push_back(where + "unknown schedule " + f[0]);
    } else {
      const bool ok = CronField(f[0], 0, 59, {}) && CronField(f[1], 0, 23, {}) &&
                      CronField(f[2], 1, 31, {}) && CronField(f[3], 1, 12, kMonths) &&
                      CronField(f[4], 0, 7, kDays);
      if (!ok) {
        c.errors.push_back(where + "bad time fields '" + f[0] + " " + f[1] + " " + f[2] + " " +
                           f[3] + " " + f[4] + "'");
      }
    }
    for (size_t i = 0; i < command.size(); ++i) {
      if (command[i] == '%' && (i == 0 || command[i - 1] != '\\')) {
        c.errors.push_back(where + "an unescaped % (cron turns it into a newline)");
        break;
      }
    }
    std::string sched;
    for (const auto& x : f) sched += (sched.empty() ? "" : " ") + x;
    c.entries.push_back({sched, command});
  }
  return c;
}

Unit ParseUnit(const std::string& text) {
  Unit u;
  std::istringstream in(text);
  std::string line, section;
  while (std::getline(in, line)) {
    const std::string t = Trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      section = t.substr(1, t.size() - 2);
      continue;
    }
    const size_t eq = t.find('=');
    if (eq == std::string::npos) continue;
    u[section].emplace(Trim(t.substr(0, eq)), Trim(t.substr(eq + 1)));
  }
  return u;
}

std::vector<std::string> UnitValues(const Unit& unit, const std::string& section,
                                    const std::string& key) {
  std::vector<std::string> out;
  auto s = unit.find(section);
  if (s == unit.end()) return out;
  auto range = s->second.equal_range(key);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

std::map<std::string, int> ExitCodesInHeader(const std::string& header_text) {
  std::map<std::string, int> out;
  static const std::regex kDef(R"(inline\s+constexpr\s+int\s+(kExit\w+)\s*=\s*(\d+)\s*;)");
  for (auto it = std::sregex_iterator(header_text.begin(), header_text.end(), kDef);
       it != std::sregex_iterator(); ++it) {
    out[(*it)[1].str()] = std::stoi((*it)[2].str());
  }
  return out;
}

std::set<int> ExitCodesInGuide(const std::string& markdown, const std::string& heading,
                               std::vector<std::string>* bad) {
  std::set<int> out;
  std::istringstream in(markdown);
  std::string line;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line.rfind("#", 0) == 0) {
      in_section = line.find(heading) != std::string::npos;
      continue;
    }
    if (!in_section || line.rfind("|", 0) != 0) continue;
    std::vector<std::string> cells = SplitOn(line, '|');
    if (cells.size() < 3) continue;
    std::string first = Trim(cells[1]);
    first.erase(std::remove(first.begin(), first.end(), '`'), first.end());
    if (first == "code" || first.find_first_not_of("-: ") == std::string::npos) continue;
    if (AllDigits(first)) {
      out.insert(std::stoi(first));
    } else if (bad) {
      bad->push_back(first);
    }
  }
  return out;
}

}  // namespace grin::guide
