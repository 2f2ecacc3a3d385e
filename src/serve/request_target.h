// The parts of a request-target the routes read: path segments matched against route patterns
// ("/v1/users/{id}/profile"), with percent-decoding, and query parameters.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace persona::serve {

// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as in query strings).
// InvalidArgument for a truncated or non-hex escape.
absl::StatusOr<std::string> PercentDecode(std::string_view s, bool plus_is_space);

struct RouteMatch {
  std::string_view pattern;  // the matched pattern, "" when no pattern matched
  std::string id;            // the decoded {id} segment, when the pattern has one
};

// Patterns are literal segments and at most one "{id}" segment that matches any non-empty
// segment. Matching compares decoded segments, so "/v1/users/a%2Fb/profile" is user "a/b".
class RoutePatterns {
 public:
  void Add(std::string_view pattern);  // `pattern` must outlive this object
  // The first pattern matching `raw_path` (still percent-encoded), pattern "" if none;
  // InvalidArgument for a malformed escape.
  absl::StatusOr<RouteMatch> Match(std::string_view raw_path) const;

 private:
  struct Pattern {
    std::string_view text;
    std::vector<std::string_view> segments;
  };
  std::vector<Pattern> patterns_;
};

class QueryParams {
 public:
  // The decoded value of the first `key`, nullopt when absent ("" for "?key" or "?key=").
  std::optional<std::string> Get(std::string_view key) const;
  std::vector<std::pair<std::string, std::string>> pairs;
};

// Parses "a=1&b=x%20y"; InvalidArgument naming the parameter with a malformed escape.
absl::StatusOr<QueryParams> ParseQuery(std::string_view query);

}  // namespace persona::serve
