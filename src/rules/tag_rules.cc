#include "rules/tag_rules.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace persona {
namespace {

absl::Status ErrorAt(std::string_view origin, size_t line, size_t column, std::string_view what) {
  std::string message(origin);
  message += ':';
  message += std::to_string(line);
  message += ':';
  message += std::to_string(column);
  message += ": ";
  message += what;
  return absl::InvalidArgumentError(message);
}

// Where the comment of `line` starts ('#' outside a double-quoted string), or line.size().
size_t CommentStart(std::string_view line) {
  bool in_string = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // skip the escaped character, which may be a quote
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '#') {
      return i;
    }
  }
  return line.size();
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// Splits Condition::Compile's "column N: what" into N and what, so that the column can be
// re-based onto the rule file's line. Condition guarantees the prefix; a message without it keeps
// column 1 rather than being lost.
std::pair<size_t, std::string_view> SplitColumn(std::string_view message) {
  constexpr std::string_view kPrefix = "column ";
  if (message.substr(0, kPrefix.size()) != kPrefix) return {1, message};
  size_t column = 0;
  const char* begin = message.data() + kPrefix.size();
  const char* end = message.data() + message.size();
  auto r = std::from_chars(begin, end, column);
  std::string_view rest(r.ptr, end - r.ptr);
  if (r.ec != std::errc() || rest.substr(0, 2) != ": ") return {1, message};
  return {column, rest.substr(2)};
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TagRules>> TagRules::Parse(std::string_view text,
                                                                std::string_view origin,
                                                                const VariableCatalog& catalog) {
  TagRules rules;
  absl::flat_hash_map<std::string, size_t> line_of_name;
  size_t line_number = 0;
  for (size_t line_start = 0; line_start < text.size();) {
    size_t line_end = text.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = text.size();
    std::string_view line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = line.substr(0, CommentStart(line));

    size_t name_begin = 0;
    while (name_begin < line.size() && IsBlank(line[name_begin])) ++name_begin;
    if (name_begin == line.size()) continue;
    const size_t name_column = name_begin + 1;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return ErrorAt(origin, line_number, name_column,
                     "expected 'name: condition' but found no ':'");
    }
    size_t name_end = colon;
    while (name_end > name_begin && IsBlank(line[name_end - 1])) --name_end;
    const std::string_view name = line.substr(name_begin, name_end - name_begin);
    if (name.empty()) {
      return ErrorAt(origin, line_number, name_column, "expected a rule name before ':'");
    }
    for (size_t i = 0; i < name.size(); ++i) {
      const char c = name[i];
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
        return ErrorAt(origin, line_number, name_column + i,
                       "rule name '" + std::string(name) +
                           "' may contain only lowercase letters a-z, digits and '_'");
      }
    }
    if (auto it = line_of_name.find(std::string(name)); it != line_of_name.end()) {
      return ErrorAt(origin, line_number, name_column,
                     "duplicate rule name '" + std::string(name) + "' (first defined on line " +
                         std::to_string(it->second) + ")");
    }
    if (rules.names_.size() == kMaxRules) {
      return ErrorAt(origin, line_number, name_column,
                     "too many rules: at most " + std::to_string(kMaxRules) +
                         " (one bit each in the profile's tag bits)");
    }

    size_t condition_begin = colon + 1;
    while (condition_begin < line.size() && IsBlank(line[condition_begin])) ++condition_begin;
    size_t condition_end = line.size();
    while (condition_end > condition_begin && IsBlank(line[condition_end - 1])) --condition_end;
    absl::StatusOr<Condition> condition =
        Condition::Compile(line.substr(condition_begin, condition_end - condition_begin), catalog);
    if (!condition.ok()) {
      const auto message = condition.status().message();
      auto [column, what] = SplitColumn(std::string_view(message.data(), message.size()));
      return ErrorAt(origin, line_number, condition_begin + column, what);
    }
    line_of_name.emplace(std::string(name), line_number);
    rules.names_.emplace_back(name);
    rules.conditions_.push_back(*std::move(condition));
  }
  for (const Condition& c : rules.conditions_) {
    rules.variables_.insert(rules.variables_.end(), c.variables().begin(), c.variables().end());
  }
  std::sort(rules.variables_.begin(), rules.variables_.end());
  rules.variables_.erase(std::unique(rules.variables_.begin(), rules.variables_.end()),
                         rules.variables_.end());
  return std::make_shared<const TagRules>(std::move(rules));
}

absl::StatusOr<std::shared_ptr<const TagRules>> TagRules::LoadFile(const std::string& path,
                                                                   const VariableCatalog& catalog) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError("cannot read tag rules file '" + path +
                               "': " + std::strerror(errno));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return absl::NotFoundError("cannot read tag rules file '" + path + "'");
  return Parse(contents.str(), path, catalog);
}

uint64_t TagRules::Evaluate(const VariableSource& source) const {
  uint64_t bits = 0;
  for (size_t i = 0; i < conditions_.size(); ++i) {
    if (conditions_[i].Evaluate(source)) bits |= uint64_t{1} << i;
  }
  return bits;
}

std::optional<size_t> TagRules::IndexOf(std::string_view name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return i;
  }
  return std::nullopt;
}

}  // namespace persona
