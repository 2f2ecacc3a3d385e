#include "recommend/recommend_config.h"

#include <toml++/toml.h>

#include <algorithm>

#include "engine/toml_reading.h"

namespace persona {

std::string_view RecSourceName(RecSource s) {
  switch (s) {
    case RecSource::kSasRec:
      return "sasrec";
    case RecSource::kItemCf:
      return "item_cf";
    case RecSource::kTrending:
      return "trending";
  }
  return "?";
}

bool ParseRecSource(std::string_view name, RecSource* out) {
  for (int i = 0; i < kRecSourceCount; ++i) {
    if (RecSourceName(static_cast<RecSource>(i)) == name) {
      *out = static_cast<RecSource>(i);
      return true;
    }
  }
  return false;
}

namespace {

// Reads the [recommend] table key by key; every key it does not know is an error naming it.
class RecommendTableReader {
 public:
  RecommendTableReader(const toml::table& table, std::string_view origin)
      : table_(table), origin_(origin) {}

  absl::Status Read(RecommendConfig* c) {
    Str("model_dir", &c->model_dir);
    Int("model_poll_seconds", 0, 86400,
        [&](int64_t v) { c->model_poll_seconds = static_cast<uint32_t>(v); });
    Bool("exclude_purchased", &c->exclude_purchased);
    Int("history", 1, 1000, [&](int64_t v) { c->history = static_cast<uint32_t>(v); });
    Int("max_k", 1, 10000, [&](int64_t v) { c->max_k = static_cast<uint32_t>(v); });
    Str("impressions_log", &c->impressions_log);
    Str("experiment", &c->experiment);
    Int("trending_half_life_hours", 1, 24 * 365,
        [&](int64_t v) { c->trending.half_life_ms = v * 3600 * 1000; });
    Int("cf_max_neighbours", 1, 10000,
        [&](int64_t v) { c->item_cf.max_neighbours = static_cast<uint32_t>(v); });
    Int("cf_window", 1, 100, [&](int64_t v) { c->item_cf.window = static_cast<uint32_t>(v); });
    Variants(c);
    if (!error_.ok()) return error_;
    for (auto&& [name, node] : table_) {
      const std::string key(name.str());
      if (std::find(known_.begin(), known_.end(), key) == known_.end()) {
        return absl::InvalidArgumentError("unknown key 'recommend." + key + "' in " +
                                          std::string(origin_));
      }
    }
    return absl::OkStatus();
  }

 private:
  const toml::node* Get(std::string_view key) {
    known_.emplace_back(key);
    return table_.get(key);
  }
  void Fail(std::string_view key, std::string_view expected, const toml::node& node) {
    if (!error_.ok()) return;
    error_ = absl::InvalidArgumentError(
        "'recommend." + std::string(key) + "' in " + std::string(origin_) + ": expected " +
        std::string(expected) + " but found " + DescribeTomlValue(node));
  }
  void Str(std::string_view key, std::string* out) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    if (auto v = n->value<std::string>()) {
      *out = *v;
    } else {
      Fail(key, "a string", *n);
    }
  }
  void Bool(std::string_view key, bool* out) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    if (const auto* v = n->as_boolean()) {
      *out = v->get();
    } else {
      Fail(key, "true or false", *n);
    }
  }
  template <typename Fn>
  void Int(std::string_view key, int64_t lo, int64_t hi, Fn set) {
    const toml::node* n = Get(key);
    if (n == nullptr) return;
    const auto* v = n->as_integer();
    if (v == nullptr || v->get() < lo || v->get() > hi) {
      Fail(key, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", *n);
      return;
    }
    set(v->get());
  }
  // [[recommend.variants]] name = "..", weight = N, sources = ["sasrec", "item_cf", "trending"]
  void Variants(RecommendConfig* c) {
    const toml::node* n = Get("variants");
    if (n == nullptr) return;
    const toml::array* list = n->as_array();
    if (list == nullptr || list->empty()) {
      Fail("variants", "a non-empty array of tables ([[recommend.variants]])", *n);
      return;
    }
    std::vector<RecVariant> variants;
    for (size_t i = 0; i < list->size() && error_.ok(); ++i) {
      const std::string where =
          "recommend.variants[" + std::to_string(i) + "] in " + std::string(origin_);
      const toml::table* t = (*list)[i].as_table();
      if (t == nullptr) {
        Fail("variants", "tables with name, weight and sources", (*list)[i]);
        return;
      }
      RecVariant v;
      for (auto&& [name, value] : *t) {
        const std::string_view field = name.str();
        if (field == "name" && value.is_string()) {
          v.name = *value.value<std::string>();
        } else if (field == "weight" && value.is_integer() && value.as_integer()->get() >= 0 &&
                   value.as_integer()->get() <= 1000000) {
          v.weight = static_cast<uint32_t>(value.as_integer()->get());
        } else if (field == "sources" && value.is_array()) {
          for (const auto& s : *value.as_array()) {
            RecSource src;
            if (!s.is_string() || !ParseRecSource(*s.value<std::string>(), &src)) {
              error_ = absl::InvalidArgumentError(
                  where + ": sources must be among \"sasrec\", \"item_cf\", \"trending\"");
              return;
            }
            v.sources.push_back(src);
          }
        } else {
          error_ = absl::InvalidArgumentError(
              "unknown or mistyped key '" + std::string(field) + "' of " + where +
              " (expected name = \"..\", weight = N, sources = [\"sasrec\", ...])");
          return;
        }
      }
      if (v.name.empty() || v.name.find('.') != std::string::npos || v.sources.empty()) {
        error_ = absl::InvalidArgumentError(
            where + ": a variant needs a name without '.' and at least one source");
        return;
      }
      for (const RecVariant& other : variants) {
        if (other.name == v.name) {
          error_ = absl::InvalidArgumentError(where + ": duplicate variant name '" + v.name + "'");
          return;
        }
      }
      variants.push_back(std::move(v));
    }
    uint64_t total = 0;
    for (const RecVariant& v : variants) total += v.weight;
    if (error_.ok() && total == 0) {
      error_ = absl::InvalidArgumentError("recommend.variants in " + std::string(origin_) +
                                          ": weights sum to 0");
    }
    if (error_.ok()) c->variants = std::move(variants);
  }

  const toml::table& table_;
  std::string_view origin_;
  std::vector<std::string> known_;
  absl::Status error_;
};

}  // namespace

absl::Status LoadRecommendConfigText(std::string_view toml, std::string_view origin,
                                     RecommendConfig* config) {
  auto table = ParseTomlText(toml, origin);
  if (!table.ok()) return table.status();
  const toml::node* node = table->get("recommend");
  if (node == nullptr) return absl::OkStatus();
  const toml::table* rec = node->as_table();
  if (rec == nullptr) {
    return absl::InvalidArgumentError("'recommend' in " + std::string(origin) + " must be a table");
  }
  return RecommendTableReader(*rec, origin).Read(config);
}

absl::Status LoadRecommendConfigFile(const std::string& path, RecommendConfig* config) {
  auto text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return LoadRecommendConfigText(*text, path, config);
}

}  // namespace persona
