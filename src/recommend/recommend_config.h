// Recommendation configuration: the [recommend] table of the same TOML file that configures the
// engine and the service (config/persona.toml lists every key with its default). Unknown keys are
// errors naming the key.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "recommend/item_cf.h"
#include "recommend/trending.h"

namespace persona {

// The recommendation sources a variant can blend, in the variant's priority order.
enum class RecSource : uint8_t { kSasRec = 0, kItemCf, kTrending };
inline constexpr int kRecSourceCount = 3;
// "sasrec", "item_cf", "trending".
std::string_view RecSourceName(RecSource s);
bool ParseRecSource(std::string_view name, RecSource* out);

// An A/B variant: users are assigned by a stable hash of their id (weights are relative), and
// the variant's sources are blended by weighted reciprocal-rank fusion, the first source weighing
// most.
struct RecVariant {
  std::string name;
  uint32_t weight = 1;
  std::vector<RecSource> sources;
};

struct RecommendConfig {
  // Directory holding SASRec artifacts (*.psm); the newest name wins. Empty = <data>/models/sasrec.
  std::string model_dir;
  // How often the model directory is checked for a new artifact (0 = only on admin reload).
  uint32_t model_poll_seconds = 10;
  bool exclude_purchased = true;  // never recommend items the user bought (in the live sequence)
  uint32_t history = 50;          // latest items of the live sequence a request uses
  uint32_t max_k = 100;           // largest ?k=
  // Where served recommendations are logged (one JSON line: rec_id, variant, items, time; no user
  // id) for `persona eval-online`. Relative to the data directory; empty = off.
  std::string impressions_log = "recs/impressions.ndjson";
  // Salt of the variant hash: change it to re-randomise assignments for a new experiment.
  std::string experiment = "exp1";
  std::vector<RecVariant> variants = {
      {"blend", 1, {RecSource::kSasRec, RecSource::kItemCf, RecSource::kTrending}}};
  TrendingConfig trending;
  ItemCfConfig item_cf;
  // Pair weight per event type for item-CF (EventType order, as TrendingConfig::weights).
  std::array<float, kEventTypeCount> cf_weights = {1, 1, 0, 2, 0, 1.5f, 3, 0, 0};
};

// Reads the [recommend] table of a TOML file / text into `config` (absent keys keep their values).
absl::Status LoadRecommendConfigFile(const std::string& path, RecommendConfig* config);
absl::Status LoadRecommendConfigText(std::string_view toml, std::string_view origin,
                                     RecommendConfig* config);

}  // namespace persona
