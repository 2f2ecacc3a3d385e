// Tag rules: named conditions whose results are kept as bits of Profile::tag_bits. The rule file
// has one rule per line, `name: condition` (see condition.h for the language); `#` starts a
// comment that runs to the end of the line (outside string literals) and blank lines are ignored.
// Rule i owns bit i, so the order of the file is the bit layout: append new rules at the end to
// keep the meaning of stored bits stable.
//
//   # spent a lot recently and keeps buying
//   high_value: monetary_30d > 1000 and purchases_30d >= 3
//
// A TagRules object is immutable. Reloading means parsing the new text into a new object and
// swapping the shared_ptr; readers holding the old one keep a consistent rule set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "rules/condition.h"
#include "rules/variables.h"

namespace persona {

class TagRules {
 public:
  // At most this many rules: one bit each in a uint64_t.
  static constexpr size_t kMaxRules = 64;

  // Parses rule text. Names are [a-z0-9_]+ and unique; there are at most kMaxRules rules. Errors
  // are InvalidArgument naming the place as "origin:line:column: ", e.g.
  // "tags.rules:3:19: unknown field 'monetery_30d' (did you mean 'monetary_30d'?)". An empty
  // text (or only comments) gives an empty rule set.
  static absl::StatusOr<std::shared_ptr<const TagRules>> Parse(std::string_view text,
                                                               std::string_view origin,
                                                               const VariableCatalog& catalog);
  // Reads and parses the file at `path` (errors name the path as origin). NotFound when the file
  // cannot be read.
  static absl::StatusOr<std::shared_ptr<const TagRules>> LoadFile(const std::string& path,
                                                                  const VariableCatalog& catalog);

  // Bit i is set when rule i holds for `source`. Does not allocate.
  uint64_t Evaluate(const VariableSource& source) const;

  // Rule names in bit order.
  std::span<const std::string> names() const { return names_; }
  size_t size() const { return names_.size(); }
  // The bit of rule `name`, or nullopt when there is no such rule.
  std::optional<size_t> IndexOf(std::string_view name) const;
  // Rule i's compiled condition (i < size()).
  const Condition& condition(size_t i) const { return conditions_[i]; }
  // The union of the variable ids all rules read, ascending: what a caller must be able to
  // answer to evaluate the rule set.
  std::span<const uint32_t> variables() const { return variables_; }

  TagRules(TagRules&&) = default;
  TagRules& operator=(TagRules&&) = default;

 private:
  TagRules() = default;

  std::vector<std::string> names_;
  std::vector<Condition> conditions_;
  std::vector<uint32_t> variables_;
};

}  // namespace persona
