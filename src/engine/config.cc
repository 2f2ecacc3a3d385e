#include "engine/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/time_util.h"
#include "engine/toml_reading.h"

namespace persona {

std::string_view SyncPolicyName(SyncPolicy p) {
  switch (p) {
    case SyncPolicy::kAlways:
      return "always";
    case SyncPolicy::kInterval:
      return "interval";
    case SyncPolicy::kNone:
      return "none";
  }
  return "interval";
}

absl::StatusOr<SyncPolicy> ParseSyncPolicy(std::string_view s) {
  if (s == "always") return SyncPolicy::kAlways;
  if (s == "interval") return SyncPolicy::kInterval;
  if (s == "none") return SyncPolicy::kNone;
  return absl::InvalidArgumentError("unknown sync policy '" + std::string(s) +
                                    "' (expected always, interval or none)");
}

namespace {

// Tables that may appear in the file; every other key must be a value read by ConfigReader.
constexpr std::string_view kTables[] = {"limits", "profile", "profile.weights", "store"};
// Tables other components read from the same file (and check themselves): the HTTP service's,
// the recommender's and the Kafka source's.
constexpr std::string_view kForeignTables[] = {"server", "recommend", "kafka"};

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> previous(b.size() + 1), current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      current[j] = std::min(
          {previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

// Formats milliseconds in the largest unit that represents them exactly ("7d", "30m", "100ms").
std::string FormatDuration(int64_t ms) {
  struct Unit {
    int64_t ms;
    const char* name;
  };
  static constexpr Unit kUnits[] = {
      {kDayMs, "d"}, {kHourMs, "h"}, {kMinuteMs, "m"}, {kSecondMs, "s"}};
  if (ms == 0) return "0ms";
  for (const Unit& unit : kUnits) {
    if (ms % unit.ms == 0) return std::to_string(ms / unit.ms) + unit.name;
  }
  return std::to_string(ms) + "ms";
}

// Reads typed, range-checked values by dotted key into a config, remembering every key it was
// asked about so that anything else in the file can be reported as unknown. The first value error
// wins; later reads still register their keys but no longer read values.
class ConfigReader {
 public:
  ConfigReader(const toml::table& root, std::string_view origin) : root_(root), origin_(origin) {}

  void String(std::string_view key, bool allow_empty, std::string* field) {
    const toml::node* node = Find(key);
    if (node == nullptr) return;
    const auto* value = node->as_string();
    if (value == nullptr || (!allow_empty && value->get().empty())) {
      Fail(key, allow_empty ? "a string" : "a non-empty string", *node);
      return;
    }
    *field = value->get();
  }

  void Bool(std::string_view key, bool* field) {
    const toml::node* node = Find(key);
    if (node == nullptr) return;
    const auto* value = node->as_boolean();
    if (value == nullptr) {
      Fail(key, "true or false", *node);
      return;
    }
    *field = value->get();
  }

  template <typename Integer>
  void Count(std::string_view key, int64_t min, int64_t max, Integer* field) {
    const toml::node* node = Find(key);
    if (node == nullptr) return;
    const auto* value = node->as_integer();
    if (value == nullptr || value->get() < min || value->get() > max) {
      Fail(key, "an integer from " + std::to_string(min) + " to " + std::to_string(max), *node);
      return;
    }
    *field = static_cast<Integer>(value->get());
  }

  // A duration string with a unit ("30m", "7d", "100ms", "1.5h") or integer milliseconds. A string
  // without a unit is refused: ParseDuration would read it as seconds, the integer form as
  // milliseconds, and that ambiguity is exactly the kind of mistake a config should not allow.
  void Duration(std::string_view key, int64_t min_ms, int64_t max_ms, int64_t* field) {
    const toml::node* node = Find(key);
    if (node == nullptr) return;
    std::optional<int64_t> ms;
    if (const auto* i = node->as_integer()) {
      ms = i->get();
    } else if (const auto* s = node->as_string()) {
      const std::string& text = s->get();
      if (!text.empty() && std::isalpha(static_cast<unsigned char>(text.back()))) {
        ms = ParseDuration(text);
      }
    }
    if (!ms || *ms < min_ms || *ms > max_ms) {
      Fail(key,
           "a duration from " + FormatDuration(min_ms) + " to " + FormatDuration(max_ms) +
               " such as \"30m\", \"7d\" or \"100ms\", or integer milliseconds",
           *node);
      return;
    }
    *field = *ms;
  }

  void Sync(std::string_view key, SyncPolicy* field) {
    const toml::node* node = Find(key);
    if (node == nullptr) return;
    const auto* value = node->as_string();
    absl::StatusOr<SyncPolicy> policy =
        value == nullptr ? absl::InvalidArgumentError("") : ParseSyncPolicy(value->get());
    if (!policy.ok()) {
      Fail(key, "one of \"always\", \"interval\" or \"none\"", *node);
      return;
    }
    *field = *policy;
  }

  void Weight(std::string_view key, double max, double* field) {
    const toml::node* node = Find(key);
    if (node == nullptr) return;
    std::optional<double> weight;
    if (const auto* i = node->as_integer()) weight = static_cast<double>(i->get());
    if (const auto* f = node->as_floating_point()) weight = f->get();
    if (!weight || !std::isfinite(*weight) || *weight < 0 || *weight > max) {
      Fail(key, "a number from 0 to " + std::to_string(static_cast<int64_t>(max)), *node);
      return;
    }
    *field = *weight;
  }

  // Records a failed cross-field check.
  void Fail(std::string_view key, std::string_view expectation, std::string_view found) {
    if (!status_.ok()) return;
    status_ = absl::InvalidArgumentError("'" + std::string(key) + "' in " + std::string(origin_) +
                                         ": expected " + std::string(expectation) + " but found " +
                                         std::string(found));
  }

  // The first key in the file that no read asked about (with the closest known key), or a known
  // table given as a plain value. Call after all reads.
  absl::Status FindUnknownKey() const { return CheckTable(root_, ""); }

  const absl::Status& status() const { return status_; }

 private:
  void Fail(std::string_view key, std::string_view expectation, const toml::node& found) {
    Fail(key, expectation, DescribeTomlValue(found));
  }

  // The node at dotted `key`, or nullptr when the file does not set it (or an error is pending).
  const toml::node* Find(std::string_view key) {
    known_.emplace_back(key);
    if (!status_.ok()) return nullptr;
    const toml::table* table = &root_;
    while (true) {
      const size_t dot = key.find('.');
      const toml::node* node = table->get(key.substr(0, dot));
      if (node == nullptr || dot == std::string_view::npos) return node;
      table = node->as_table();
      if (table == nullptr) return nullptr;  // reported by FindUnknownKey
      key.remove_prefix(dot + 1);
    }
  }

  absl::Status CheckTable(const toml::table& table, const std::string& prefix) const {
    for (auto&& [name, node] : table) {
      const std::string key = prefix + std::string(name.str());
      if (std::find(std::begin(kForeignTables), std::end(kForeignTables), key) !=
          std::end(kForeignTables)) {
        continue;
      }
      const bool is_table_key =
          std::find(std::begin(kTables), std::end(kTables), key) != std::end(kTables);
      if (is_table_key) {
        const toml::table* nested = node.as_table();
        if (nested == nullptr) {
          return absl::InvalidArgumentError("'" + key + "' in " + std::string(origin_) +
                                            ": expected a table but found " +
                                            DescribeTomlValue(node));
        }
        if (absl::Status s = CheckTable(*nested, key + "."); !s.ok()) return s;
      } else if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        return absl::InvalidArgumentError("unknown key '" + key + "' in " + std::string(origin_) +
                                          Suggestion(key));
      }
    }
    return absl::OkStatus();
  }

  std::string Suggestion(std::string_view key) const {
    const size_t limit = key.size() <= 4 ? 1 : key.size() <= 8 ? 2 : 3;
    const std::string* best = nullptr;
    size_t best_distance = limit + 1;
    for (const std::string& candidate : known_) {
      const size_t d = EditDistance(key, candidate);
      if (d < best_distance) {
        best = &candidate;
        best_distance = d;
      }
    }
    return best == nullptr ? "" : " (did you mean '" + *best + "'?)";
  }

  const toml::table& root_;
  std::string_view origin_;
  std::vector<std::string> known_;
  absl::Status status_;
};

constexpr int64_t kMaxSize = int64_t{1} << 26;  // 64 MiB: far above any sane field length
constexpr int64_t kYearMs = 365 * kDayMs;

// Every key of the file, in the order of config/persona.toml. Keep the two in step: the test
// loads persona.toml and compares it with EngineConfig{}.
void ReadAll(ConfigReader& r, EngineConfig& c) {
  r.String("data_dir", /*allow_empty=*/false, &c.data_dir);
  r.Count("partitions", 0, 1024, &c.partitions);
  r.Sync("sync", &c.sync);
  r.Duration("sync_interval", 1, kHourMs, &c.sync_interval_ms);
  r.Count("max_batch_events", 1, 1 << 20, &c.max_batch_events);
  r.Count("queue_capacity_events", 1, 1 << 30, &c.queue_capacity_events);
  r.Duration("checkpoint_interval", 0, kYearMs, &c.checkpoint_interval_ms);
  r.Count("checkpoint_every_events", 0, std::numeric_limits<int64_t>::max(),
          &c.checkpoint_every_events);
  r.Bool("checkpoint_on_close", &c.checkpoint_on_close);
  r.Duration("dedup_window", 0, kYearMs, &c.dedup_window_ms);
  r.Count("dedup_recent_events", 0, int64_t{1} << 32, &c.dedup_recent_events);
  r.Bool("wall_clock", &c.wall_clock);
  r.String("tag_rules_file", /*allow_empty=*/true, &c.tag_rules_file);

  r.Duration("store.log_retention", 0, 100 * kYearMs, &c.log_retention_ms);
  r.Count("store.log_retention_bytes", 0, std::numeric_limits<int64_t>::max(),
          &c.log_retention_bytes);
  r.Count("store.log_segment_bytes", 1, int64_t{1} << 40, &c.log_segment_bytes);

  ValidationLimits& l = c.limits;
  r.Count("limits.max_id_length", 1, kMaxSize, &l.max_id_length);
  r.Count("limits.max_category_length", 1, kMaxSize, &l.max_category_length);
  r.Count("limits.max_query_length", 1, kMaxSize, &l.max_query_length);
  r.Count("limits.max_text_length", 1, kMaxSize, &l.max_text_length);
  r.Count("limits.max_attrs_length", 1, kMaxSize, &l.max_attrs_length);
  r.Duration("limits.max_future_skew", 0, 10 * kYearMs, &l.max_future_skew_ms);

  ProfileConfig& p = c.profile;
  r.Duration("profile.half_life", kSecondMs, 10 * kYearMs, &p.half_life_ms);
  for (int t = 0; t < kEventTypeCount; ++t) {
    r.Weight("profile.weights." + std::string(EventTypeName(static_cast<EventType>(t))), 1e6,
             &p.type_weight[t]);
  }
  r.Duration("profile.session_gap", kSecondMs, kYearMs, &p.session_gap_ms);
  r.Count("profile.sequence_length", 0, 60000, &p.sequence_length);  // ItemSequence holds <= 60,000
  r.Count("profile.category_capacity", 1, 10000, &p.category_capacity);
  r.Count("profile.brand_capacity", 1, 10000, &p.brand_capacity);
  r.Count("profile.item_capacity", 1, 10000, &p.item_capacity);
  r.Count("profile.keyword_capacity", 1, 10000, &p.keyword_capacity);
  r.Duration("profile.new", 0, 10 * kYearMs, &p.new_ms);
  r.Duration("profile.dormant_after", 1, 10 * kYearMs, &p.dormant_after_ms);
  r.Duration("profile.churned_after", 1, 10 * kYearMs, &p.churned_after_ms);
  // Lifecycle stages must come in order, whichever of the two keys the file sets.
  if (p.churned_after_ms < p.dormant_after_ms) {
    r.Fail("profile.churned_after",
           "at least profile.dormant_after (" + FormatDuration(p.dormant_after_ms) + ")",
           FormatDuration(p.churned_after_ms));
  }
}

}  // namespace

absl::Status LoadConfigText(std::string_view toml_text, std::string_view origin,
                            EngineConfig* config) {
  absl::StatusOr<toml::table> parsed = ParseTomlText(toml_text, origin);
  if (!parsed.ok()) return parsed.status();
  const toml::table& root = *parsed;
  // Work on a copy so that a file with an error changes nothing.
  EngineConfig updated = *config;
  ConfigReader reader(root, origin);
  ReadAll(reader, updated);
  // A misspelt key explains a surprising value better than any value error, so it is reported
  // first.
  if (absl::Status unknown = reader.FindUnknownKey(); !unknown.ok()) return unknown;
  if (!reader.status().ok()) return reader.status();
  *config = std::move(updated);
  return absl::OkStatus();
}

absl::Status LoadConfigFile(const std::string& path, EngineConfig* config) {
  absl::StatusOr<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return LoadConfigText(*text, path, config);
}

absl::StatusOr<toml::table> ParseTomlText(std::string_view text, std::string_view origin) {
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(
        std::string(origin) + ":" + std::to_string(e.source().begin.line) + ":" +
        std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
  }
}

absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError("cannot read config file '" + path + "': " + std::strerror(errno));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::string DescribeTomlValue(const toml::node& node) {
  if (const auto* s = node.as_string()) return "\"" + s->get() + "\"";
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* f = node.as_floating_point()) {
    std::ostringstream out;
    out << f->get();
    return out.str();
  }
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  if (node.is_table()) return "a table";
  if (node.is_array()) return "an array";
  return "a date or time";
}

}  // namespace persona
