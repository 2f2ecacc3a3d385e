#include "serve/request_target.h"

namespace persona::serve {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    const size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) {
        return absl::InvalidArgumentError("truncated percent-escape in '" + std::string(s) + "'");
      }
      const int a = HexValue(s[i + 1]), b = HexValue(s[i + 2]);
      if (a < 0 || b < 0) {
        return absl::InvalidArgumentError("malformed percent-escape in '" + std::string(s) + "'");
      }
      out.push_back(static_cast<char>(a * 16 + b));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void RoutePatterns::Add(std::string_view pattern) {
  patterns_.push_back(Pattern{pattern, Split(pattern)});
}

absl::StatusOr<RouteMatch> RoutePatterns::Match(std::string_view raw_path) const {
  const std::vector<std::string_view> raw = Split(raw_path);
  // Decode lazily: most segments are literal and equal their raw form.
  std::vector<std::string> decoded(raw.size());
  std::vector<bool> done(raw.size(), false);
  auto segment = [&](size_t i) -> absl::StatusOr<std::string_view> {
    if (raw[i].find('%') == std::string_view::npos) return raw[i];
    if (!done[i]) {
      auto d = PercentDecode(raw[i], false);
      if (!d.ok()) return d.status();
      decoded[i] = std::move(*d);
      done[i] = true;
    }
    return std::string_view(decoded[i]);
  };
  for (const Pattern& p : patterns_) {
    if (p.segments.size() != raw.size()) continue;
    RouteMatch m;
    bool ok = true;
    for (size_t i = 0; i < raw.size() && ok; ++i) {
      auto seg = segment(i);
      if (!seg.ok()) return seg.status();
      if (p.segments[i] == "{id}") {
        if (seg->empty()) ok = false;
        m.id = std::string(*seg);
      } else {
        ok = p.segments[i] == *seg;
      }
    }
    if (ok) {
      m.pattern = p.text;
      return m;
    }
  }
  return RouteMatch{};
}

std::optional<std::string> QueryParams::Get(std::string_view key) const {
  for (const auto& [k, v] : pairs) {
    if (k == key) return v;
  }
  return std::nullopt;
}

absl::StatusOr<QueryParams> ParseQuery(std::string_view query) {
  QueryParams out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    auto key = PercentDecode(part.substr(0, eq), true);
    if (!key.ok()) return absl::InvalidArgumentError("query: " + std::string(key.status().message()));
    std::string value;
    if (eq != std::string_view::npos) {
      auto v = PercentDecode(part.substr(eq + 1), true);
      if (!v.ok()) {
        return absl::InvalidArgumentError("query parameter '" + *key +
                                          "': " + std::string(v.status().message()));
      }
      value = std::move(*v);
    }
    out.pairs.emplace_back(std::move(*key), std::move(value));
  }
  return out;
}

}  // namespace persona::serve
