#include "serve/testing/prometheus_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"

namespace persona::serve {
namespace {

// Debian's Abseil has its own string_view type, so absl::StrCat does not take ours.
void AppendPiece(std::string& out, std::string_view piece) { out.append(piece); }
void AppendPiece(std::string& out, char piece) { out.push_back(piece); }
void AppendPiece(std::string& out, size_t piece) { out.append(std::to_string(piece)); }
void AppendPiece(std::string& out, double piece) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, piece);
  out.append(buf, r.ptr);
}
template <typename... Pieces>
std::string Cat(const Pieces&... pieces) {
  std::string out;
  (AppendPiece(out, pieces), ...);
  return out;
}

struct Sample {
  std::string name;
  MetricLabels labels;
  double value = 0;
};

bool IsNameChar(char c, bool first, bool allow_colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (c == ':') return allow_colon;
  return !first && c >= '0' && c <= '9';
}

// Consumes a name from the front of `s`; "" if there is none.
std::string_view TakeName(std::string_view& s, bool allow_colon) {
  size_t n = 0;
  while (n < s.size() && IsNameChar(s[n], n == 0, allow_colon)) ++n;
  std::string_view name = s.substr(0, n);
  s.remove_prefix(n);
  return name;
}

std::optional<double> ParseValue(std::string_view s) {
  if (s == "+Inf" || s == "Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s.starts_with('+')) s.remove_prefix(1);
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  // from_chars also takes "inf"/"nan" spellings; Prometheus' own are handled above.
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

absl::StatusOr<Sample> ParseSampleLine(std::string_view line) {
  Sample sample;
  std::string_view rest = line;
  sample.name = std::string(TakeName(rest, /*allow_colon=*/true));
  if (sample.name.empty()) return absl::InvalidArgumentError("sample does not start with a name");
  if (!rest.empty() && rest[0] == '{') {
    rest.remove_prefix(1);
    while (true) {
      if (rest.empty()) return absl::InvalidArgumentError("unterminated label set");
      if (rest[0] == '}') {
        rest.remove_prefix(1);
        break;
      }
      std::string label(TakeName(rest, /*allow_colon=*/false));
      if (label.empty()) return absl::InvalidArgumentError("invalid label name");
      for (const auto& [existing, value] : sample.labels) {
        if (existing == label) return absl::InvalidArgumentError(Cat("label ", label, " twice"));
      }
      if (!rest.starts_with("=\"")) {
        return absl::InvalidArgumentError(Cat("label ", label, " lacks =\""));
      }
      rest.remove_prefix(2);
      std::string value;
      bool closed = false;
      while (!rest.empty()) {
        char c = rest[0];
        rest.remove_prefix(1);
        if (c == '"') {
          closed = true;
          break;
        }
        if (c != '\\') {
          value.push_back(c);
          continue;
        }
        if (rest.empty()) break;
        char escaped = rest[0];
        rest.remove_prefix(1);
        if (escaped == '\\' || escaped == '"') {
          value.push_back(escaped);
        } else if (escaped == 'n') {
          value.push_back('\n');
        } else {
          return absl::InvalidArgumentError(Cat("invalid escape \\", escaped, " in label ", label));
        }
      }
      if (!closed) return absl::InvalidArgumentError(Cat("unterminated value of ", label));
      sample.labels.emplace_back(std::move(label), std::move(value));
      if (!rest.empty() && rest[0] == ',') {
        rest.remove_prefix(1);  // a trailing comma before '}' is allowed
      } else if (rest.empty() || rest[0] != '}') {
        return absl::InvalidArgumentError("expected ',' or '}' after a label");
      }
    }
  }
  if (rest.empty() || (rest[0] != ' ' && rest[0] != '\t')) {
    return absl::InvalidArgumentError("expected a space before the value");
  }
  while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
  size_t end = rest.find_first_of(" \t");
  std::optional<double> value = ParseValue(rest.substr(0, end));
  if (!value) {
    return absl::InvalidArgumentError(Cat("invalid value \"", rest.substr(0, end), "\""));
  }
  sample.value = *value;
  if (end != std::string_view::npos) {
    std::string_view ts = rest.substr(end);
    while (!ts.empty() && (ts[0] == ' ' || ts[0] == '\t')) ts.remove_prefix(1);
    int64_t ms = 0;
    auto [ptr, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), ms);
    if (ts.empty() || ec != std::errc() || ptr != ts.data() + ts.size()) {
      return absl::InvalidArgumentError(Cat("invalid timestamp \"", ts, "\""));
    }
  }
  return sample;
}

MetricLabels Sorted(MetricLabels labels) {
  std::sort(labels.begin(), labels.end());
  return labels;
}

std::string SeriesKey(std::string_view name, const MetricLabels& labels) {
  std::string key(name);
  for (const auto& [label, value] : Sorted(labels)) key += Cat("\x01", label, "\x02", value);
  return key;
}

// One histogram series (labels without `le`) as seen so far.
struct HistogramState {
  double last_le = -std::numeric_limits<double>::infinity();
  double last_count = 0;
  bool has_buckets = false;
  bool has_inf = false;
  bool has_sum = false;
  std::optional<double> count;
  size_t first_line = 0;
};

}  // namespace

absl::Status CheckPrometheusText(std::string_view text) {
  if (!text.empty() && text.back() != '\n') {
    return absl::InvalidArgumentError("the last line does not end with a line feed");
  }
  absl::flat_hash_map<std::string, std::string> types;  // family -> type
  absl::flat_hash_set<std::string> helps;
  absl::flat_hash_set<std::string> sampled;  // families with samples already
  absl::flat_hash_set<std::string> series;
  std::string current_family;
  absl::flat_hash_map<std::string, HistogramState> histograms;

  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    auto error = [&](std::string_view what) {
      return absl::InvalidArgumentError(Cat("line ", line_no, ": ", what, ": ", line));
    };
    if (line.empty()) continue;
    if (line[0] == '#') {
      bool is_help = line.starts_with("# HELP ");
      bool is_type = line.starts_with("# TYPE ");
      if (!is_help && !is_type) continue;  // a plain comment
      std::string_view rest = line.substr(7);
      std::string name(TakeName(rest, /*allow_colon=*/true));
      if (name.empty() || (!rest.empty() && rest[0] != ' ')) return error("invalid metric name");
      if (is_help) {
        if (!helps.insert(name).second) return error("second HELP for the family");
        std::string_view help = rest.empty() ? rest : rest.substr(1);
        for (size_t i = 0; i < help.size(); ++i) {
          if (help[i] == '\\' &&
              (i + 1 == help.size() || (help[i + 1] != '\\' && help[i + 1] != 'n'))) {
            return error("invalid escape in HELP");
          }
          if (help[i] == '\\') ++i;
        }
        continue;
      }
      if (rest.size() < 2) return error("TYPE without a type");
      std::string_view type = rest.substr(1);
      if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
          type != "untyped") {
        return error("unknown type");
      }
      if (sampled.contains(name)) return error("TYPE after the family's samples");
      if (!types.emplace(name, type).second) return error("second TYPE for the family");
      continue;
    }

    absl::StatusOr<Sample> sample = ParseSampleLine(line);
    if (!sample.ok()) return error(std::string(sample.status().message()));
    const std::string& name = sample->name;
    std::string family = name;
    std::string_view suffix;
    if (!types.contains(name)) {
      for (std::string_view candidate : {"_bucket", "_sum", "_count"}) {
        if (!name.ends_with(candidate)) continue;
        std::string base = name.substr(0, name.size() - candidate.size());
        auto it = types.find(base);
        if (it == types.end()) continue;
        if (it->second == "histogram" || (it->second == "summary" && candidate != "_bucket")) {
          family = base;
          suffix = candidate;
        }
      }
    }
    auto type_it = types.find(family);
    if (type_it == types.end()) return error("sample without a TYPE for its family");
    const std::string& type = type_it->second;
    if (family != current_family) {
      if (sampled.contains(family)) return error("family's samples are not contiguous");
      current_family = family;
    }
    sampled.insert(family);
    if (!series.insert(SeriesKey(name, sample->labels)).second) return error("duplicate series");
    if (type == "counter" && !(sample->value >= 0)) return error("counter is negative or NaN");
    if (type == "histogram") {
      if (suffix.empty()) return error("histogram sample without _bucket/_sum/_count suffix");
      MetricLabels labels;
      std::optional<double> le;
      for (const auto& [label, value] : sample->labels) {
        if (label == "le") {
          le = ParseValue(value);
          if (!le) return error("invalid le");
        } else {
          labels.emplace_back(label, value);
        }
      }
      HistogramState& h = histograms[SeriesKey(family, labels)];
      if (h.first_line == 0) h.first_line = line_no;
      if (suffix == "_bucket") {
        if (!le) return error("bucket without le");
        if (h.has_buckets && !(*le > h.last_le)) return error("le not increasing");
        if (h.has_buckets && sample->value < h.last_count) return error("buckets not cumulative");
        if (!(sample->value >= 0)) return error("negative bucket count");
        h.has_buckets = true;
        h.last_le = *le;
        h.last_count = sample->value;
        if (std::isinf(*le) && *le > 0) h.has_inf = true;
      } else if (le) {
        return error("le on a non-bucket sample");
      } else if (suffix == "_sum") {
        h.has_sum = true;
      } else {
        h.count = sample->value;
      }
    }
  }
  for (const auto& [key, h] : histograms) {
    std::string where = Cat("histogram series starting at line ", h.first_line);
    if (!h.has_inf) return absl::InvalidArgumentError(Cat(where, " has no le=\"+Inf\""));
    if (!h.has_sum) return absl::InvalidArgumentError(Cat(where, " has no _sum"));
    if (!h.count) return absl::InvalidArgumentError(Cat(where, " has no _count"));
    if (*h.count != h.last_count) {
      return absl::InvalidArgumentError(
          Cat(where, ": _count ", *h.count, " != +Inf bucket ", h.last_count));
    }
  }
  return absl::OkStatus();
}

std::optional<double> PrometheusSample(std::string_view text, std::string_view name,
                                       const MetricLabels& labels) {
  MetricLabels wanted = Sorted(labels);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view line = text.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    pos = eol == std::string_view::npos ? text.size() : eol + 1;
    if (line.empty() || line[0] == '#' || !line.starts_with(name)) continue;
    absl::StatusOr<Sample> sample = ParseSampleLine(line);
    if (sample.ok() && sample->name == name && Sorted(sample->labels) == wanted) {
      return sample->value;
    }
  }
  return std::nullopt;
}

}  // namespace persona::serve
