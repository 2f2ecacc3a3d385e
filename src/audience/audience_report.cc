#include "audience/audience_report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "common/time_util.h"
#include "simdjson.h"

namespace persona {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::string_view kLifecycleNames[AudienceAggregates::kLifecycleStages] = {
    "new", "active", "dormant", "churned"};
constexpr std::string_view kTierNames[AudienceAggregates::kPriceTiers] = {"budget", "mid",
                                                                          "premium", "none"};
// A category is named in a noisy report only when its noisy user count is at least this many
// noise scales: the chance that a category held by one user clears it is about e^-4 / 2.
constexpr double kCategoryThresholdScales = 5;

int TierIndex(std::string_view tier) {
  if (tier == "budget") return 0;
  if (tier == "mid") return 1;
  if (tier == "premium") return 2;
  return 3;
}

// Draws Laplace noise for the released statistics of one report.
class NoiseSource {
 public:
  NoiseSource(std::optional<uint64_t> seed)
      : rng_(seed ? *seed : (uint64_t{std::random_device()()} << 32) ^ std::random_device()()) {}

  double Draw(double scale) {
    // (0, 1) exclusive at both ends, so the logarithm below is finite.
    std::uniform_real_distribution<double> uniform(std::numeric_limits<double>::min(), 1.0);
    return LaplaceNoise(scale, uniform(rng_));
  }

 private:
  std::mt19937_64 rng_;
};

uint64_t NoisyCount(uint64_t exact, double scale, NoiseSource* noise) {
  if (noise == nullptr) return exact;
  const double noisy = std::round(static_cast<double>(exact) + noise->Draw(scale));
  return noisy <= 0 ? 0 : static_cast<uint64_t>(noisy);
}

double NoisySum(double exact, double scale, NoiseSource* noise) {
  if (noise == nullptr) return exact;
  return std::max(0.0, exact + noise->Draw(scale));
}

}  // namespace

double LaplaceNoise(double scale, double uniform01) {
  // Inverse CDF, written on each half so that neither end loses precision: u < 1/2 maps to
  // scale * ln(2u) (finite down to the smallest double), u >= 1/2 to -scale * ln(2(1 - u)).
  const double u =
      std::clamp(uniform01, std::numeric_limits<double>::min(), std::nextafter(1.0, 0.0));
  return u < 0.5 ? scale * std::log(2 * u) : -scale * std::log(2 * (1 - u));
}

void AudienceAggregates::Add(const Profile& profile, const ProfileConfig& config, int64_t now_ms,
                             std::string_view top_category, double top_share,
                             const ReportOptions& options, std::optional<int> segment) {
  ++size;
  const double monetary = profile.monetary();
  spend += monetary;
  spend_clipped += std::clamp(monetary, 0.0, options.spend_clip);
  const double orders_count = profile.orders();
  orders += orders_count;
  orders_clipped += std::min(orders_count, options.orders_clip);
  ++lifecycle[static_cast<int>(profile.Lifecycle(config, now_ms))];
  ++price_tiers[TierIndex(profile.price_tier())];
  ++segments[segment.value_or(profile.segment())];
  if (!top_category.empty()) {
    CategorySums& c = categories[std::string(top_category)];
    ++c.users;
    c.share_sum += std::clamp(top_share, 0.0, 1.0);
  }
}

void AudienceAggregates::Merge(const AudienceAggregates& other) {
  size += other.size;
  spend += other.spend;
  spend_clipped += other.spend_clipped;
  orders += other.orders;
  orders_clipped += other.orders_clipped;
  for (int i = 0; i < kLifecycleStages; ++i) lifecycle[i] += other.lifecycle[i];
  for (int i = 0; i < kPriceTiers; ++i) price_tiers[i] += other.price_tiers[i];
  for (const auto& [segment, users] : other.segments) segments[segment] += users;
  for (const auto& [name, sums] : other.categories) {
    CategorySums& c = categories[name];
    c.users += sums.users;
    c.share_sum += sums.share_sum;
  }
}

void WriteAggregatesJson(JsonWriter& w, const AudienceAggregates& a) {
  w.BeginObject();
  w.Key("size").Uint(a.size);
  w.Key("spend").Double(a.spend);
  w.Key("spend_clipped").Double(a.spend_clipped);
  w.Key("orders").Double(a.orders);
  w.Key("orders_clipped").Double(a.orders_clipped);
  w.Key("lifecycle").BeginArray();
  for (uint64_t n : a.lifecycle) w.Uint(n);
  w.EndArray();
  w.Key("price_tiers").BeginArray();
  for (uint64_t n : a.price_tiers) w.Uint(n);
  w.EndArray();
  w.Key("segments").BeginArray();
  for (const auto& [segment, users] : a.segments) {
    w.BeginArray();
    w.Int(segment);
    w.Uint(users);
    w.EndArray();
  }
  w.EndArray();
  w.Key("categories").BeginArray();
  for (const auto& [name, sums] : a.categories) {
    w.BeginArray();
    w.String(name);
    w.Uint(sums.users);
    w.Double(sums.share_sum);
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
}

absl::StatusOr<AudienceAggregates> ParseAggregatesJson(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const auto bad = [](std::string_view what) {
    return absl::InvalidArgumentError("audience aggregates: bad " + std::string(what));
  };
  if (parser.parse(json.data(), json.size()).get(doc)) return bad("JSON");
  AudienceAggregates a;
  if (doc["size"].get_uint64().get(a.size)) return bad("size");
  const std::pair<const char*, double*> sums[] = {{"spend", &a.spend},
                                                  {"spend_clipped", &a.spend_clipped},
                                                  {"orders", &a.orders},
                                                  {"orders_clipped", &a.orders_clipped}};
  for (const auto& [name, out] : sums) {
    if (doc[name].get_double().get(*out)) return bad(name);
  }
  auto counts = [&](const char* name, auto& out) {
    simdjson::dom::array list;
    if (doc[name].get_array().get(list) || list.size() != out.size()) return false;
    size_t i = 0;
    for (auto v : list) {
      if (v.get_uint64().get(out[i++])) return false;
    }
    return true;
  };
  if (!counts("lifecycle", a.lifecycle)) return bad("lifecycle");
  if (!counts("price_tiers", a.price_tiers)) return bad("price_tiers");
  simdjson::dom::array list;
  if (doc["segments"].get_array().get(list)) return bad("segments");
  for (auto v : list) {
    simdjson::dom::array pair;
    int64_t segment;
    uint64_t users;
    if (v.get_array().get(pair) || pair.size() != 2 || pair.at(0).get_int64().get(segment) ||
        pair.at(1).get_uint64().get(users)) {
      return bad("segments");
    }
    a.segments[static_cast<int>(segment)] += users;
  }
  if (doc["categories"].get_array().get(list)) return bad("categories");
  for (auto v : list) {
    simdjson::dom::array triple;
    std::string_view name;
    AudienceAggregates::CategorySums c;
    if (v.get_array().get(triple) || triple.size() != 3 || triple.at(0).get_string().get(name) ||
        triple.at(1).get_uint64().get(c.users) || triple.at(2).get_double().get(c.share_sum)) {
      return bad("categories");
    }
    a.categories[std::string(name)] = c;
  }
  return a;
}

AudienceReport MakeAudienceReport(const AudienceAggregates& a, const ReportOptions& options) {
  AudienceReport r;
  std::optional<NoiseSource> noise_source;
  double count_scale = 0, spend_scale = 0, orders_scale = 0;
  if (options.epsilon && *options.epsilon > 0) {
    noise_source.emplace(options.seed);
    r.noisy = true;
    r.epsilon = *options.epsilon;
    r.epsilon_per_statistic = r.epsilon / AudienceReport::kReleasedStatistics;
    r.spend_clip = options.spend_clip;
    r.orders_clip = options.orders_clip;
    count_scale = 1 / r.epsilon_per_statistic;
    spend_scale = options.spend_clip / r.epsilon_per_statistic;
    orders_scale = options.orders_clip / r.epsilon_per_statistic;
  }
  NoiseSource* noise = noise_source ? &*noise_source : nullptr;

  r.size = NoisyCount(a.size, count_scale, noise);
  r.spend_sum = NoisySum(noise ? a.spend_clipped : a.spend, spend_scale, noise);
  r.orders_sum = NoisySum(noise ? a.orders_clipped : a.orders, orders_scale, noise);
  r.spend_mean = r.size > 0 ? r.spend_sum / static_cast<double>(r.size) : kNaN;
  r.orders_mean = r.size > 0 ? r.orders_sum / static_cast<double>(r.size) : kNaN;
  for (int i = 0; i < AudienceAggregates::kLifecycleStages; ++i) {
    r.lifecycle.push_back(
        {std::string(kLifecycleNames[i]), NoisyCount(a.lifecycle[i], count_scale, noise)});
  }
  for (const auto& [segment, users] : a.segments) {
    r.segments.push_back({segment, NoisyCount(users, count_scale, noise)});
  }
  for (int i = 0; i < AudienceAggregates::kPriceTiers; ++i) {
    r.price_tiers.push_back(
        {std::string(kTierNames[i]), NoisyCount(a.price_tiers[i], count_scale, noise)});
  }
  std::vector<AudienceReport::Category> categories;
  for (const auto& [name, sums] : a.categories) {
    AudienceReport::Category c;
    c.category = name;
    c.users = NoisyCount(sums.users, count_scale, noise);
    const double share_sum = NoisySum(sums.share_sum, count_scale, noise);
    if (noise != nullptr && static_cast<double>(c.users) < kCategoryThresholdScales * count_scale) {
      continue;
    }
    if (c.users == 0) continue;
    c.mean_share = std::clamp(share_sum / static_cast<double>(c.users), 0.0, 1.0);
    categories.push_back(std::move(c));
  }
  std::sort(categories.begin(), categories.end(), [](const auto& x, const auto& y) {
    return x.users != y.users ? x.users > y.users : x.category < y.category;
  });
  if (categories.size() > options.top_categories) categories.resize(options.top_categories);
  r.top_categories = std::move(categories);
  return r;
}

void AudienceReport::WriteJson(JsonWriter& w) const {
  w.BeginObject();
  WriteMembers(w);
  w.EndObject();
}

void AudienceReport::WriteMembers(JsonWriter& w) const {
  w.Key("size").Uint(size);
  w.Key("spend").BeginObject();
  w.Key("sum").Double(spend_sum);
  w.Key("mean").Double(spend_mean);
  w.Key("orders").Double(orders_sum);
  w.Key("orders_mean").Double(orders_mean);
  w.EndObject();
  auto buckets = [&w](std::string_view key, const std::vector<Bucket>& list) {
    w.Key(key).BeginObject();
    for (const Bucket& b : list) w.Key(b.name).Uint(b.users);
    w.EndObject();
  };
  buckets("lifecycle", lifecycle);
  w.Key("segments").BeginArray();
  for (const SegmentBucket& b : segments) {
    w.BeginObject();
    w.Key("segment").Int(b.segment);
    w.Key("users").Uint(b.users);
    w.EndObject();
  }
  w.EndArray();
  buckets("price_tiers", price_tiers);
  w.Key("top_categories").BeginArray();
  for (const Category& c : top_categories) {
    w.BeginObject();
    w.Key("category").String(c.category);
    w.Key("users").Uint(c.users);
    w.Key("mean_share").Double(c.mean_share);
    w.EndObject();
  }
  w.EndArray();
  w.Key("privacy").BeginObject();
  w.Key("noisy").Bool(noisy);
  if (noisy) {
    w.Key("mechanism").String("laplace");
    w.Key("epsilon").Double(epsilon);
    w.Key("epsilon_per_statistic").Double(epsilon_per_statistic);
    w.Key("statistics").Int(kReleasedStatistics);
    w.Key("clip").BeginObject();
    w.Key("spend").Double(spend_clip);
    w.Key("orders").Double(orders_clip);
    w.EndObject();
  }
  w.EndObject();
  w.Key("scanned").Uint(scanned);
  w.Key("as_of").String(FormatIsoTime(as_of_ms));
  w.Key("as_of_ms").Int(as_of_ms);
  w.Key("took_ms").Double(took_ms);
}

}  // namespace persona
