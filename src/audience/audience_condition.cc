#include "audience/audience_condition.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bitset>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "common/time_util.h"
#include "predict/predictor.h"
#include "simdjson.h"

namespace persona {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Ids of the names this catalog adds. Profile features use ids < 128 and calls >= 1 << 20; ours
// sit between (names) and above (calls) so both can be answered by one source.
enum AudienceId : uint32_t {
  kSegmentId = 200,
  kSatisfactionId,
  kAnomalousId,
  kPropensityId,
  kChurnId,
  kPredictedSegmentId,
};
constexpr uint32_t kCallBase = 1u << 24;
// Call arguments longer than this are refused: the registry keeps every distinct argument for the
// life of the process, so ad-hoc queries from the network must not be able to grow it without
// bound (kMaxCalls caps the count).
constexpr size_t kMaxCallArgBytes = 256;

enum class CallKind : uint8_t { kInterest, kTag, kAttribute };

struct AudienceCall {
  CallKind kind = CallKind::kInterest;
  InterestKind interest = InterestKind::kCategory;
  uint8_t anomaly_mask = 0;  // tag("high_rate") etc.: the AnomalyFlag bit it also means
  bool bot = false;          // tag("bot"): any anomaly flag
  std::string arg;
};

// Registered calls, indexed by (id - kCallBase). Registration takes a mutex; reads take none:
// calls live in fixed chunks published with release stores and never move, and a reader only
// holds ids that a compile handed it after the call was written.
class CallRegistry {
 public:
  static constexpr uint32_t kChunkBits = 10;
  static constexpr uint32_t kChunkSize = 1u << kChunkBits;
  static constexpr uint32_t kChunks = 1024;
  static constexpr uint32_t kMaxCalls = kChunkSize * kChunks;

  std::optional<uint32_t> Register(AudienceCall call, uint8_t function_code) {
    std::string key;
    key.push_back(static_cast<char>(function_code));
    key.append(call.arg);
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = index_.find(key); it != index_.end()) return it->second;
    if (size_ >= kMaxCalls) return std::nullopt;
    const uint32_t index = size_;
    const uint32_t chunk = index >> kChunkBits;
    AudienceCall* block = chunks_[chunk].load(std::memory_order_relaxed);
    if (block == nullptr) {
      owned_.push_back(std::make_unique<AudienceCall[]>(kChunkSize));
      block = owned_.back().get();
    }
    block[index & (kChunkSize - 1)] = std::move(call);
    chunks_[chunk].store(block, std::memory_order_release);
    ++size_;
    index_.emplace(std::move(key), index);
    return index;
  }

  const AudienceCall& Get(uint32_t index) const {
    return chunks_[index >> kChunkBits].load(std::memory_order_acquire)[index & (kChunkSize - 1)];
  }

  uint32_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return size_;
  }

 private:
  mutable std::mutex mu_;
  std::atomic<AudienceCall*> chunks_[kChunks] = {};
  std::vector<std::unique_ptr<AudienceCall[]>> owned_;
  absl::flat_hash_map<std::string, uint32_t> index_;
  uint32_t size_ = 0;
};

constexpr std::pair<std::string_view, std::string_view> kRfmAliases[] = {
    {"rfm.r", "rfm_r"},
    {"rfm.f", "rfm_f"},
    {"rfm.m", "rfm_m"},
    {"rfm.recency_days", "recency_days"},
    {"rfm.orders", "orders"},
    {"rfm.monetary", "monetary"},
    {"rfm.monetary_1d", "monetary_1d"},
    {"rfm.monetary_7d", "monetary_7d"},
    {"rfm.monetary_30d", "monetary_30d"},
    {"rfm.aov", "aov"},
};

struct OwnName {
  std::string_view name;
  uint32_t id;
  VarType type;
};
constexpr OwnName kOwnNames[] = {
    {"segment", kSegmentId, VarType::kNumber},
    {"satisfaction", kSatisfactionId, VarType::kNumber},
    {"anomalous", kAnomalousId, VarType::kBool},
    {"predictions.propensity", kPropensityId, VarType::kNumber},
    {"predictions.churn", kChurnId, VarType::kNumber},
    {"predictions.segment", kPredictedSegmentId, VarType::kNumber},
};

constexpr std::string_view kInterestFunctions[kInterestKindCount] = {
    "interest.category", "interest.brand", "interest.item", "interest.keyword"};

// Profile feature names whose value changes with `now` (or with other users, for the RFM
// quintiles) while the profile itself stays the same.
bool ProfileNameDependsOnTime(std::string_view name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  return ends_with("_1d") || ends_with("_7d") || ends_with("_30d") || name == "recency_days" ||
         name == "days_since_last_seen" || name == "days_since_first_seen" || name == "lifecycle" ||
         name == "rfm_r" || name == "rfm_f" || name == "rfm_m";
}

// Relative cost of reading a profile feature in a scan, where the profile is not in cache: 1 for
// fields inside the profile object, more for those behind another heap block (day buckets,
// interest tables, extras), most for model scores. Used only to order the conjuncts of a
// condition; any order gives the same result.
uint32_t ProfileNameCost(std::string_view name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  if (ends_with("_1d") || ends_with("_7d") || ends_with("_30d")) return 10;
  if (name.starts_with("top_")) return 20;
  if (name == "avg_rating" || name == "ratings" || name == "refund_amount" ||
      name == "net_monetary") {
    return 5;
  }
  return 1;
}

// The base names of window features, in EventType order, then all events and purchase amount.
constexpr std::string_view kWindowMetrics[] = {"views",        "clicks", "searches",  "carts",
                                               "remove_carts", "favs",   "purchases", "reviews",
                                               "refunds",      "events", "monetary"};
constexpr uint8_t kEventsMetric = kEventTypeCount;
constexpr uint8_t kAmountMetric = kEventTypeCount + 1;
static_assert(std::size(kWindowMetrics) == kEventTypeCount + 2);

uint8_t WindowDaysOf(std::string_view name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  return ends_with("_1d") ? 1 : ends_with("_7d") ? 7 : ends_with("_30d") ? 30 : 0;
}

class AudienceCatalogImpl : public VariableCatalog {
 public:
  AudienceCatalogImpl() : profile_(ProfileFeatureCatalog()) {
    for (const auto& [alias, target] : kRfmAliases) {
      if (auto info = profile_.Lookup(target)) own_.emplace(std::string(alias), *info);
    }
    for (const OwnName& n : kOwnNames) own_.emplace(std::string(n.name), VarInfo{n.id, n.type});
    names_ = profile_.Names();
    for (const auto& [alias, target] : kRfmAliases) names_.emplace_back(alias);
    for (const OwnName& n : kOwnNames) names_.emplace_back(n.name);
    names_.emplace_back("tag");
    names_.emplace_back("attribute");
    for (std::string_view f : kInterestFunctions) {
      if (std::find(names_.begin(), names_.end(), f) == names_.end()) names_.emplace_back(f);
    }
    for (const std::string& name : names_) {
      std::optional<VarInfo> info = Lookup(name);
      if (info && info->id < time_ids_.size() && ProfileNameDependsOnTime(name)) {
        time_ids_.set(info->id);
      }
      if (info && info->id < costs_.size()) costs_[info->id] = ProfileNameCost(name);
      if (info && info->id < window_days_.size() && info->type == VarType::kNumber) {
        window_days_[info->id] = WindowDaysOf(name);
        if (window_days_[info->id] > 0) {
          // "views_7d" -> "views": the all-time total that bounds the window from above, and
          // what the window sums.
          const std::string base = name.substr(0, name.rfind('_'));
          if (std::optional<VarInfo> all_time = profile_.Lookup(base)) {
            window_totals_[info->id] = static_cast<uint8_t>(all_time->id);
          }
          for (uint8_t m = 0; m < std::size(kWindowMetrics); ++m) {
            if (base == kWindowMetrics[m]) window_metrics_[info->id] = m;
          }
        }
      }
    }
    costs_[kSatisfactionId] = 5;
    costs_[kPropensityId] = costs_[kChurnId] = costs_[kPredictedSegmentId] = 1000;
    time_ids_.set(kPropensityId);
    time_ids_.set(kChurnId);
    time_ids_.set(kPredictedSegmentId);
  }

  std::optional<VarInfo> Lookup(std::string_view name) const override {
    if (auto it = own_.find(std::string(name)); it != own_.end()) return it->second;
    return profile_.Lookup(name);
  }

  std::optional<VarInfo> LookupCall(std::string_view function,
                                    std::string_view arg) const override {
    AudienceCall call;
    VarType type;
    uint8_t code;
    if (function == "tag") {
      call.kind = CallKind::kTag;
      type = VarType::kBool;
      code = 0;
      for (uint8_t bit = 1; bit < (1u << kAnomalyFlagCount); bit <<= 1) {
        if (arg == AnomalyFlagName(bit)) call.anomaly_mask = bit;
      }
      call.bot = arg == "bot";
    } else if (function == "attribute") {
      call.kind = CallKind::kAttribute;
      type = VarType::kString;
      code = 1;
    } else {
      int kind = -1;
      for (int k = 0; k < kInterestKindCount; ++k) {
        if (function == kInterestFunctions[k]) kind = k;
      }
      if (kind < 0) return profile_.LookupCall(function, arg);
      call.kind = CallKind::kInterest;
      call.interest = static_cast<InterestKind>(kind);
      type = VarType::kNumber;
      code = static_cast<uint8_t>(2 + kind);
    }
    if (arg.size() > kMaxCallArgBytes) return std::nullopt;
    call.arg = std::string(arg);
    std::optional<uint32_t> index = calls_.Register(std::move(call), code);
    if (!index) return std::nullopt;
    return VarInfo{kCallBase + *index, type};
  }

  std::vector<std::string> Names() const override { return names_; }

  const CallRegistry& calls() const { return calls_; }
  bool DependsOnTime(uint32_t id) const { return id < time_ids_.size() && time_ids_.test(id); }
  // 1, 7 or 30 for a profile feature summed over a day window, else 0.
  int WindowDays(uint32_t id) const { return id < window_days_.size() ? window_days_[id] : 0; }
  // The id of the all-time total of a window feature (views for views_7d, monetary for
  // monetary_30d), or 0xff when unknown.
  uint32_t WindowTotal(uint32_t id) const { return window_totals_[id]; }
  // What a window feature sums: an EventType (0..8), kEventsMetric or kAmountMetric; 0xff when
  // not a window feature this source knows how to sum itself.
  uint8_t WindowMetric(uint32_t id) const { return window_metrics_[id]; }
  uint32_t Cost(uint32_t id) const {
    if (id < costs_.size()) return costs_[id] == 0 ? 1 : costs_[id];
    if (id < kCallBase) return 20;  // a profile feature call: interest shares
    switch (calls_.Get(id - kCallBase).kind) {
      case CallKind::kInterest:
        return 20;
      case CallKind::kTag:
        return 1;
      case CallKind::kAttribute:
        return 40;
    }
    return 20;
  }

 private:
  const VariableCatalog& profile_;
  absl::flat_hash_map<std::string, VarInfo> own_;
  std::vector<std::string> names_;
  std::bitset<256> time_ids_;
  std::array<uint32_t, 256> costs_{};
  std::array<uint8_t, 256> window_days_{};
  std::array<uint8_t, 256> window_totals_ = MakeFilled(0xff);
  std::array<uint8_t, 256> window_metrics_ = MakeFilled(0xff);
  static std::array<uint8_t, 256> MakeFilled(uint8_t value) {
    std::array<uint8_t, 256> a;
    a.fill(value);
    return a;
  }
  mutable CallRegistry calls_;
};

const AudienceCatalogImpl& Catalog() {
  static const AudienceCatalogImpl catalog;
  return catalog;
}

// The attribute object of the profile being read, parsed once per source: one parser per thread,
// remembered with the serial of the source that parsed it, so a source re-parses only when
// another source on the same thread used the parser in between.
struct AttributeParser {
  simdjson::dom::parser parser;
  simdjson::dom::object object;
  bool valid = false;
  uint64_t serial = 0;
  uint64_t next_serial = 0;
};
AttributeParser& ThreadAttributeParser() {
  thread_local AttributeParser parser;
  return parser;
}

}  // namespace

const VariableCatalog& AudienceCatalog() { return Catalog(); }

std::string_view VarTypeName(VarType type) {
  switch (type) {
    case VarType::kNumber:
      return "number";
    case VarType::kString:
      return "string";
    case VarType::kBool:
      return "bool";
  }
  return "?";
}

// ---- field list

namespace {

std::string CountDescription(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> kWindows[] = {
      {"_1d", " on the UTC day of now"},
      {"_7d", " over the 7 UTC days ending today"},
      {"_30d", " over the 30 UTC days ending today"}};
  std::string_view base = name;
  std::string_view window = " (all time)";
  for (const auto& [suffix, text] : kWindows) {
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      base = name.substr(0, name.size() - suffix.size());
      window = text;
    }
  }
  std::string what = base == "events" ? "events of any type" : std::string(base) + " events";
  if (base == "monetary") what = "purchase amount";
  return "Number of " + what + std::string(window) + ".";
}

struct KnownField {
  std::string_view name;
  std::string_view group;
  std::string_view description;
};
constexpr KnownField kKnownFields[] = {
    {"monetary", "money", "Gross purchase amount (price x quantity), all time."},
    {"net_monetary", "money", "monetary minus refunded amounts."},
    {"monetary_1d", "money", "Purchase amount on the UTC day of now."},
    {"monetary_7d", "money", "Purchase amount over the 7 UTC days ending today."},
    {"monetary_30d", "money", "Purchase amount over the 30 UTC days ending today."},
    {"orders", "money", "Distinct orders."},
    {"aov", "money", "Average order value: monetary / orders (NaN without orders)."},
    {"refund_amount", "money", "Sum of refund amounts."},
    {"recency_days", "time", "Days since the last purchase (1e6 when never)."},
    {"days_since_last_seen", "time", "Days since the latest event."},
    {"days_since_first_seen", "time", "Days since the first event."},
    {"sessions", "sessions", "Number of sessions."},
    {"avg_session_minutes", "sessions", "Mean session duration in minutes."},
    {"avg_session_events", "sessions", "Mean events per session."},
    {"cart_rate", "funnel", "carts / views (NaN without views)."},
    {"purchase_rate", "funnel", "purchases / carts (NaN without carts)."},
    {"conversion_rate", "funnel", "purchases / views (NaN without views)."},
    {"rfm_r", "rfm", "Recency quintile score 1..5 (5 = most recent), 0 without a purchase."},
    {"rfm_f", "rfm", "Frequency quintile score 1..5, 0 without a purchase."},
    {"rfm_m", "rfm", "Monetary quintile score 1..5, 0 without a purchase."},
    {"price_index", "scores", "Mean price percentile of the user's items in [0, 1]."},
    {"avg_rating", "scores", "Mean review rating 1..5 (NaN without ratings)."},
    {"ratings", "scores", "Number of ratings given."},
    {"lifecycle", "strings", "\"new\", \"active\", \"dormant\" or \"churned\" at now."},
    {"price_tier", "strings", "\"budget\", \"mid\", \"premium\", or \"\" without priced events."},
    {"top_category", "strings", "Highest-scoring category named by events (\"\" when none)."},
    {"top_brand", "strings", "Highest-scoring brand (\"\" when none)."},
    {"top_item", "strings", "Highest-scoring item (\"\" when none)."},
    {"top_keyword", "strings", "Highest-scoring search keyword (\"\" when none)."},
    {"buyer", "booleans", "At least one purchase."},
    {"segment", "model",
     "Segment of the loaded segment model (else the one stored at the latest update; -1 none)."},
    {"satisfaction", "model", "Mean review sentiment in [0, 1] (NaN without scored reviews)."},
    {"anomalous", "model", "Any anomaly flag is set (bot-like behaviour)."},
    {"predictions.propensity", "predictions",
     "Calibrated purchase propensity in [0, 1] (NaN without the model)."},
    {"predictions.churn", "predictions",
     "Calibrated churn risk in [0, 1] (NaN without the model)."},
    {"predictions.segment", "predictions",
     "Segment of the loaded segment model computed now (-1 without a model)."},
};

}  // namespace

const std::vector<AudienceFieldInfo>& AudienceFieldList() {
  static const std::vector<AudienceFieldInfo> fields = [] {
    std::vector<AudienceFieldInfo> out;
    const AudienceCatalogImpl& catalog = Catalog();
    auto add = [&](std::string_view name, std::string_view group, std::string description) {
      std::optional<VarInfo> info = catalog.Lookup(name);
      if (!info) return;
      out.push_back({std::string(name), info->type, std::string(group), std::move(description)});
    };
    std::vector<std::string> seen;
    for (const std::string& name : ProfileFeatureCatalog().Names()) {
      std::optional<VarInfo> info = catalog.Lookup(name);
      if (!info) continue;  // a function name
      const KnownField* known = nullptr;
      for (const KnownField& k : kKnownFields) {
        if (k.name == name) known = &k;
      }
      if (known != nullptr) {
        add(name, known->group, std::string(known->description));
      } else if (info->type == VarType::kNumber && info->id < 40) {
        add(name, "counts", CountDescription(name));
      } else {
        add(name, "profile", "Profile feature (see docs/profile.md).");
      }
    }
    for (const auto& [alias, target] : kRfmAliases) {
      add(alias, "rfm", "Alias of " + std::string(target) + ".");
    }
    for (const OwnName& n : kOwnNames) {
      for (const KnownField& k : kKnownFields) {
        if (k.name == n.name) add(n.name, k.group, std::string(k.description));
      }
    }
    return out;
  }();
  return fields;
}

const std::vector<AudienceFunctionInfo>& AudienceFunctionList() {
  static const std::vector<AudienceFunctionInfo> functions = {
      {"interest.category", "category path", VarType::kNumber,
       "Share in [0, 1] of the category (with its subcategories) among the user's category "
       "interest; 0 when absent."},
      {"interest.brand", "brand", VarType::kNumber, "Share in [0, 1] of the brand; 0 when absent."},
      {"interest.item", "item id", VarType::kNumber, "Share in [0, 1] of the item; 0 when absent."},
      {"interest.keyword", "search keyword (lowercase)", VarType::kNumber,
       "Share in [0, 1] of searches containing the keyword; 0 when absent."},
      {"tag", "tag rule or anomaly flag name", VarType::kBool,
       "The tag rule fired, or the anomaly flag (high_rate, regular_timing, view_burst, "
       "cart_churn) is set; tag(\"bot\") = any anomaly flag. Unknown names are false."},
      {"attribute", "attribute key", VarType::kString,
       "The user's attribute as a string (other JSON values as JSON text); \"\" when absent."},
  };
  return functions;
}

// ---- AudienceSource

AudienceSource::AudienceSource(const Profile& profile, const ProfileContext& ctx, int64_t now_ms,
                               const AudienceEnv& env, AudienceEvalCache* cache)
    : features_(profile, ctx, now_ms),
      profile_(profile),
      ctx_(ctx),
      now_ms_(now_ms),
      env_(env),
      cache_(cache) {
  std::memset(memo_ids_, 0xff, sizeof memo_ids_);
}

uint32_t* AudienceSource::Slot(uint32_t id) const {
  uint32_t slot = (id * 2654435761u) >> 26;  // 64 slots
  while (true) {
    uint32_t& key = memo_ids_[slot];
    if (key == id) return &key;
    if (key == kEmpty) return memo_used_ < kMemoLimit ? &key : nullptr;
    slot = (slot + 1) & (kMemoSlots - 1);
  }
}

double AudienceSource::Number(uint32_t id) const {
  uint32_t* slot = Slot(id);
  if (slot == nullptr) return ComputeNumber(id);
  Value& value = memo_values_[slot - memo_ids_];
  if (*slot == id) return value.number;
  value.number = ComputeNumber(id);
  *slot = id;
  ++memo_used_;
  return value.number;
}

std::string_view AudienceSource::String(uint32_t id) const {
  uint32_t* slot = Slot(id);
  if (slot == nullptr) return ComputeString(id);
  Value& value = memo_values_[slot - memo_ids_];
  if (*slot == id) return value.text;
  new (&value.text) std::string_view(ComputeString(id));
  *slot = id;
  ++memo_used_;
  return value.text;
}

bool AudienceSource::Bool(uint32_t id) const {
  uint32_t* slot = Slot(id);
  if (slot == nullptr) return ComputeBool(id);
  Value& value = memo_values_[slot - memo_ids_];
  if (*slot == id) return value.flag;
  value.flag = ComputeBool(id);
  *slot = id;
  ++memo_used_;
  return value.flag;
}

int CurrentSegment(const Profile& profile, const ProfileContext& ctx, int64_t now_ms,
                   const Predictor* predictor) {
  const int computed = predictor != nullptr ? predictor->Segment(profile, ctx, now_ms) : -1;
  return computed >= 0 ? computed : profile.segment();
}

double AudienceSource::ComputeNumber(uint32_t id) const {
  if (id >= kCallBase) {
    const AudienceCall& call = Catalog().calls().Get(id - kCallBase);
    if (call.kind != CallKind::kInterest) return kNaN;
    return InterestShare(id - kCallBase, static_cast<int>(call.interest), call.arg);
  }
  switch (id) {
    case kSegmentId:
      return CurrentSegment(profile_, ctx_, now_ms_, env_.predictor);
    case kSatisfactionId:
      return profile_.satisfaction();
    case kPropensityId:
      EnsureScores();
      return propensity_;
    case kChurnId:
      EnsureScores();
      return churn_;
    case kPredictedSegmentId:
      return env_.predictor != nullptr ? env_.predictor->Segment(profile_, ctx_, now_ms_) : -1;
    default:
      break;
  }
  if (const int days = Catalog().WindowDays(id); days > 0) {
    // Windows are sums over the day buckets, a heap block of its own and most of the cost of a
    // window in a scan. Two cases are known without it: every bucket is older than the window
    // (a lapsed user), or the all-time total is 0 (nothing of the kind ever happened; counts
    // and purchase amounts are never negative).
    const DailyActivity& daily = profile_.daily();
    if (daily.bucket_count() == 0 || daily.latest_day() <= FloorDiv(now_ms_, kDayMs) - days) {
      return 0;
    }
    if (const uint32_t total = Catalog().WindowTotal(id);
        total != 0xff && features_.Number(total) == 0) {
      return 0;
    }
    if (const uint8_t metric = Catalog().WindowMetric(id); metric != 0xff) {
      const ActivityTotals& t = Window(days == 1 ? 0 : days == 7 ? 1 : 2);
      if (metric == kAmountMetric) return t.purchase_amount;
      if (metric == kEventsMetric) return static_cast<double>(t.events());
      return static_cast<double>(t.counts[metric]);
    }
  }
  return features_.Number(id);
}

std::string_view AudienceSource::ComputeString(uint32_t id) const {
  if (id >= kCallBase) {
    const AudienceCall& call = Catalog().calls().Get(id - kCallBase);
    return call.kind == CallKind::kAttribute ? Attribute(call.arg) : std::string_view();
  }
  return features_.String(id);
}

bool AudienceSource::ComputeBool(uint32_t id) const {
  if (id >= kCallBase) {
    const AudienceCall& call = Catalog().calls().Get(id - kCallBase);
    return call.kind == CallKind::kTag &&
           Tag(id - kCallBase, call.anomaly_mask, call.bot, call.arg);
  }
  if (id == kAnomalousId) return profile_.anomaly_flags() != 0;
  return features_.Bool(id);
}

void AudienceSource::EnsureScores() const {
  if (scored_) return;
  scored_ = true;
  propensity_ = churn_ = kNaN;
  if (env_.predictor == nullptr) return;
  Predictor::Scores scores = env_.predictor->Score(profile_, ctx_, now_ms_);
  if (scores.propensity) propensity_ = *scores.propensity;
  if (scores.churn) churn_ = *scores.churn;
}

const ActivityTotals& AudienceSource::Window(int index) const {
  if (!windows_) {
    // One pass over the day buckets for all three windows (1 <= 7 <= 30 days ending today).
    // Each bucket's counts go to the smallest window holding it and are prefix-summed after,
    // a third of the additions; amounts are added to every window in bucket order, so the sums
    // equal ProfileFeatures' to the last bit.
    std::array<ActivityTotals, 3>& w = windows_.emplace();
    const int64_t today = FloorDiv(now_ms_, kDayMs);
    profile_.daily().ForEach([&](const DayBucket& b) {
      const int64_t age = today - b.day;
      if (age < 0 || age >= 30) return;
      const int smallest = age < 1 ? 0 : age < 7 ? 1 : 2;
      for (int t = 0; t < kEventTypeCount; ++t) w[smallest].counts[t] += b.counts[t];
      for (int i = smallest; i < 3; ++i) w[i].purchase_amount += b.purchase_amount;
    });
    for (int t = 0; t < kEventTypeCount; ++t) {
      w[1].counts[t] += w[0].counts[t];
      w[2].counts[t] += w[1].counts[t];
    }
  }
  return (*windows_)[index];
}

double AudienceSource::InterestShare(uint32_t call_index, int kind, std::string_view key) const {
  const InterestTable& table = profile_.interests(static_cast<InterestKind>(kind));
  const double total = table.total();
  if (!(total > 0)) return 0;
  auto share = [total](const InterestTable::Entry& e) {
    return std::clamp(e.score / total, 0.0, 1.0);
  };
  uint32_t* learnt = nullptr;
  if (cache_ != nullptr) {
    // The pool code of `key` in this partition, once some profile showed it: then one integer
    // scan of the table replaces a string comparison per entry.
    AudienceEvalCache::PoolCodes* pool = nullptr;
    for (AudienceEvalCache::PoolCodes& p : cache_->pools_) {
      if (p.ctx == &ctx_) pool = &p;
    }
    if (pool == nullptr)
      pool = &cache_->pools_.emplace_back(AudienceEvalCache::PoolCodes{&ctx_, {}});
    if (pool->codes.size() <= call_index) pool->codes.resize(call_index + 1, StringPool::kNone);
    learnt = &pool->codes[call_index];
    if (*learnt != StringPool::kNone) {
      const InterestTable::Entry* e = table.Find(*learnt);
      return e != nullptr ? share(*e) : 0;
    }
  }
  for (const InterestTable::Entry& e : table.entries()) {
    if (ctx_.pool.Get(e.code()) == key) {
      if (learnt != nullptr) *learnt = e.code();
      return share(e);
    }
  }
  return 0;
}

bool AudienceSource::Tag(uint32_t call_index, uint8_t anomaly_mask, bool bot,
                         std::string_view name) const {
  const uint8_t flags = profile_.anomaly_flags();
  if ((flags & anomaly_mask) != 0 || (bot && flags != 0)) return true;
  const TagRules* rules = env_.tags.get();
  if (rules == nullptr) return false;
  int bit;
  if (cache_ != nullptr) {
    if (cache_->tags_.get() != rules) {
      cache_->tags_ = env_.tags;
      cache_->tag_bits_.clear();
    }
    if (cache_->tag_bits_.size() <= call_index) {
      cache_->tag_bits_.resize(call_index + 1, AudienceEvalCache::kUnresolved);
    }
    int16_t& cached = cache_->tag_bits_[call_index];
    if (cached == AudienceEvalCache::kUnresolved) {
      std::optional<size_t> index = rules->IndexOf(name);
      cached = index ? static_cast<int16_t>(*index) : -1;
    }
    bit = cached;
  } else {
    std::optional<size_t> index = rules->IndexOf(name);
    bit = index ? static_cast<int>(*index) : -1;
  }
  return bit >= 0 && ((profile_.tag_bits >> bit) & 1) != 0;
}

std::string_view AudienceSource::Attribute(std::string_view key) const {
  const std::string_view json = profile_.attributes_json();
  if (json.size() <= 2) return {};  // "{}"
  AttributeParser& p = ThreadAttributeParser();
  if (attribute_serial_ == 0 || p.serial != attribute_serial_) {
    simdjson::dom::element root;
    p.valid =
        !p.parser.parse(json.data(), json.size()).get(root) && !root.get_object().get(p.object);
    p.serial = attribute_serial_ = ++p.next_serial;
  }
  if (!p.valid) return {};
  simdjson::dom::element value;
  if (p.object.at_key(key).get(value)) return {};
  std::string_view text;
  if (value.get_string().get(text)) {
    texts_.push_front(simdjson::to_string(value));
  } else {
    texts_.emplace_front(text);
  }
  return texts_.front();
}

// ---- AudienceCondition

AudienceCondition::AudienceCondition(Condition condition) : condition_(std::move(condition)) {
  const AudienceCatalogImpl& catalog = Catalog();
  for (uint32_t id : condition_.variables()) {
    if (id == kPropensityId || id == kChurnId || id == kPredictedSegmentId) {
      uses_predictions_ = true;
    }
    if (catalog.DependsOnTime(id)) uses_time_ = true;
  }
  // A conjunction is evaluated cheapest operand first: in a scan most profiles are rejected by
  // a field of the profile object itself before any condition on day buckets, interest tables
  // or model scores has to fetch another block from memory.
  condition_.OrderConjunctsByCost([&catalog](uint32_t id) -> uint64_t { return catalog.Cost(id); });
}

bool AudienceCondition::Evaluate(const VariableSource& source) const {
  return condition_.Evaluate(source);
}

absl::StatusOr<AudienceCondition> AudienceCondition::Compile(std::string_view text) {
  absl::StatusOr<Condition> condition = Condition::Compile(text, Catalog());
  if (!condition.ok()) return condition.status();
  return AudienceCondition(*std::move(condition));
}

bool AudienceCondition::Matches(const Profile& profile, const ProfileContext& ctx, int64_t now_ms,
                                const AudienceEnv& env) const {
  AudienceSource source(profile, ctx, now_ms, env);
  return Evaluate(source);
}

uint64_t MatchAll(std::span<const AudienceCondition* const> conditions, const Profile& profile,
                  const ProfileContext& ctx, int64_t now_ms, const AudienceEnv& env,
                  AudienceEvalCache* cache) {
  AudienceSource source(profile, ctx, now_ms, env, cache);
  uint64_t bits = 0;
  const size_t n = std::min<size_t>(conditions.size(), 64);
  for (size_t i = 0; i < n; ++i) {
    if (conditions[i] != nullptr && conditions[i]->Evaluate(source)) bits |= uint64_t{1} << i;
  }
  return bits;
}

// ---- AudienceField

absl::StatusOr<AudienceField> AudienceField::Parse(std::string_view field) {
  absl::StatusOr<VarInfo> info = Condition::ResolveVariable(field, Catalog());
  if (!info.ok()) {
    // The compiler explains a bad name best (did-you-mean, "is a function", ...): reuse its
    // message without the column, which means little for a field list. Anything else (not a
    // single name or call) is just an unknown field.
    std::string message = "unknown field '" + std::string(field) + "'";
    const std::string full(info.status().message());
    std::string_view detail = full;
    if (size_t colon = detail.find(": "); detail.starts_with("column ") && colon != detail.npos) {
      detail.remove_prefix(colon + 2);
    }
    if (detail.starts_with("unknown ") || detail.find("function") != detail.npos) {
      message = std::string(detail);
    }
    return absl::InvalidArgumentError(message);
  }
  return AudienceField(std::string(field), *info);
}

absl::StatusOr<std::vector<AudienceField>> AudienceField::ParseAll(
    std::span<const std::string> fields) {
  std::vector<AudienceField> out;
  out.reserve(fields.size());
  for (const std::string& f : fields) {
    absl::StatusOr<AudienceField> parsed = Parse(f);
    if (!parsed.ok()) return parsed.status();
    out.push_back(*std::move(parsed));
  }
  return out;
}

AudienceValue AudienceField::Value(const VariableSource& source) const {
  switch (info_.type) {
    case VarType::kNumber:
      return source.Number(info_.id);
    case VarType::kString:
      return std::string(source.String(info_.id));
    case VarType::kBool:
      return source.Bool(info_.id);
  }
  return kNaN;
}

void AudienceField::Write(JsonWriter& w, const AudienceValue& value) {
  if (const double* d = std::get_if<double>(&value)) {
    w.Double(*d);
  } else if (const std::string* s = std::get_if<std::string>(&value)) {
    w.String(*s);
  } else {
    w.Bool(std::get<bool>(value));
  }
}

void AppendCsvCell(std::string& out, std::string_view cell) {
  const bool quote = cell.find_first_of(",\"\r\n") != std::string_view::npos ||
                     (!cell.empty() && (cell.front() == ' ' || cell.back() == ' '));
  if (!quote) {
    out.append(cell);
    return;
  }
  out.push_back('"');
  for (char c : cell) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

void AudienceField::AppendCsv(std::string& out, const AudienceValue& value) {
  if (const double* d = std::get_if<double>(&value)) {
    if (!std::isfinite(*d)) return;  // NaN (undefined) is an empty cell
    // The JSON writer's shortest round-trip form, so CSV and NDJSON agree digit for digit.
    JsonWriter w;
    w.Double(*d);
    out.append(w.str());
  } else if (const std::string* s = std::get_if<std::string>(&value)) {
    AppendCsvCell(out, *s);
  } else {
    out.append(std::get<bool>(value) ? "true" : "false");
  }
}

}  // namespace persona
