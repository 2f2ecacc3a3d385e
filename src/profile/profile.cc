#include "profile/profile.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/hash.h"
#include "common/json_writer.h"
#include "common/time_util.h"
#include "profile/profile_context.h"
#include "profile/query_tokenizer.h"
#include "simdjson.h"

namespace persona {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr size_t kMaxAttributesBytes = 64 * 1024;
// A dotted category path credits at most this many levels (bounds the per-event work).
constexpr int kMaxCategoryDepth = 8;

double Ratio(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : kNaN;
}

// Non-zero 32-bit key of an id string (0 means "none" for sessions and recent orders).
uint32_t IdKey(std::string_view id) { return static_cast<uint32_t>(Hash64(id)) | 1u; }

bool IsPricedBehaviour(EventType t) {
  return t == EventType::kView || t == EventType::kCart || t == EventType::kFav ||
         t == EventType::kPurchase;
}

}  // namespace

std::string_view InterestKindName(InterestKind kind) {
  static constexpr std::string_view kNames[] = {"categories", "brands", "items", "keywords"};
  return kNames[static_cast<int>(kind)];
}

std::string_view LifecycleStageName(LifecycleStage s) {
  static constexpr std::string_view kNames[] = {"new", "active", "dormant", "churned"};
  return kNames[static_cast<int>(s)];
}

Profile::Profile(const Profile& other) { *this = other; }

Profile& Profile::operator=(const Profile& other) {
  if (this == &other) return *this;
  tag_bits = other.tag_bits;
  timeline_head = other.timeline_head;
  first_seen_ms_ = other.first_seen_ms_;
  last_seen_ms_ = other.last_seen_ms_;
  anchor_ms_ = other.anchor_ms_;
  last_purchase_ms_ = other.last_purchase_ms_;
  monetary_ = other.monetary_;
  counts_ = other.counts_;
  orders_ = other.orders_;
  price_percentile_sum_ = other.price_percentile_sum_;
  price_weight_ = other.price_weight_;
  interest_tables_ = other.interest_tables_;
  sessions_ = other.sessions_;
  hours_ = other.hours_;
  daily_ = other.daily_;
  sequence_ = other.sequence_;
  rhythm_ = other.rhythm_;
  segment_ = other.segment_;
  anomaly_flags_ = other.anomaly_flags_;
  extras_ = other.extras_ ? std::make_unique<Extras>(*other.extras_) : nullptr;
  return *this;
}

Profile::Extras& Profile::extras() {
  if (!extras_) extras_ = std::make_unique<Extras>();
  return *extras_;
}

uint64_t Profile::events() const {
  uint64_t n = 0;
  for (uint32_t c : counts_) n += c;
  return n;
}

void Profile::Apply(const Event& e, ProfileContext& ctx) {
  const ProfileConfig& config = *ctx.config;
  const int type = static_cast<int>(e.type);
  if (type < 0 || type >= kEventTypeCount) return;
  const int64_t ts = e.ts_ms;
  const int64_t half_life = std::max<int64_t>(1, config.half_life_ms);

  if (empty()) {
    first_seen_ms_ = last_seen_ms_ = ts;
    anchor_ms_ = FloorDiv(ts, half_life) * half_life;
  } else {
    first_seen_ms_ = std::min(first_seen_ms_, ts);
    last_seen_ms_ = std::max(last_seen_ms_, ts);
  }
  // The population must see the RFM inputs from before this event (the purchase count is one
  // of them), so they are taken before anything changes.
  const RfmInputs rfm_before = rfm_inputs();
  if (counts_[type] != UINT32_MAX) ++counts_[type];

  // Amount of a purchase or refund: price * quantity (quantity 1 when absent). Validation
  // guarantees price >= 0; the checks keep a NaN/inf from poisoning monetary sums regardless.
  double amount = 0;
  if ((e.type == EventType::kPurchase || e.type == EventType::kRefund) && e.has_price() &&
      std::isfinite(e.price) && e.price > 0) {
    amount = e.price * std::max<int32_t>(1, e.quantity);
  }
  daily_.Add(static_cast<int32_t>(FloorDiv(ts, kDayMs)), e.type,
             e.type == EventType::kPurchase ? amount : 0.0);

  sessions_.Observe(ts, e.session_id.empty() ? 0 : IdKey(e.session_id), config.session_gap_ms);
  hours_.Add(ts);
  rhythm_.Observe(e.type, ts, config.session_gap_ms);

  const uint32_t item_code = e.item_id.empty() ? StringPool::kNone : ctx.pool.Intern(e.item_id);
  CreditInterests(e, item_code, ctx);
  ApplyConsumption(e, amount, rfm_before, ctx);

  if (e.rating >= 1 && e.rating <= 5) {
    Extras& x = extras();
    x.rating_sum += static_cast<uint64_t>(e.rating);
    if (x.rating_count != UINT32_MAX) ++x.rating_count;
  }
  if (item_code != StringPool::kNone) {
    sequence_.Add(ts, e.type, item_code, config.sequence_length);
  }
}

double Profile::DecayedCredit(double weight, int64_t ts_ms, int64_t half_life_ms) {
  int64_t delta = ts_ms - anchor_ms_;
  if (delta > kRebaseHalfLives * half_life_ms) {
    // Move the anchor to the half-life boundary at or before ts and rescale exactly.
    const int64_t k = FloorDiv(delta, half_life_ms);
    const int shift = static_cast<int>(std::min<int64_t>(k, 1 << 20));
    for (InterestTable& t : interest_tables_) t.ScaleDownByPowerOfTwo(shift);
    anchor_ms_ += k * half_life_ms;
    delta -= k * half_life_ms;
  }
  return weight * std::exp2(static_cast<double>(delta) / static_cast<double>(half_life_ms));
}

void Profile::CreditInterests(const Event& e, uint32_t item_code, ProfileContext& ctx) {
  const ProfileConfig& config = *ctx.config;
  const double weight = config.type_weight[static_cast<int>(e.type)];
  if (!(weight > 0)) return;
  const std::string_view category = e.category_key();
  const bool any =
      !category.empty() || !e.brand.empty() || item_code != StringPool::kNone || !e.query.empty();
  if (!any) return;
  const double credit = DecayedCredit(weight, e.ts_ms, std::max<int64_t>(1, config.half_life_ms));
  // A term that underflowed (an event hundreds of half-lives late) carries no information and
  // would only put zero-score keys into the tables.
  if (!(credit > 0) || !std::isfinite(credit)) return;

  if (!category.empty()) {
    InterestTable& t = table(InterestKind::kCategory);
    t.AddTotal(credit);
    // "a.b.c" credits "a", "a.b" and "a.b.c"; only the full key is marked as named directly.
    int depth = 0;
    size_t dot = category.find('.');
    while (dot != std::string_view::npos && depth < kMaxCategoryDepth - 1) {
      if (dot > 0 && category[dot - 1] != '.') {
        t.Add(ctx.pool.Intern(category.substr(0, dot)), credit, config.category_capacity, false);
        ++depth;
      }
      dot = category.find('.', dot + 1);
    }
    t.Add(ctx.pool.Intern(category), credit, config.category_capacity, true);
  }
  if (!e.brand.empty()) {
    InterestTable& t = table(InterestKind::kBrand);
    t.AddTotal(credit);
    t.Add(ctx.pool.Intern(e.brand), credit, config.brand_capacity, false);
  }
  if (item_code != StringPool::kNone) {
    InterestTable& t = table(InterestKind::kItem);
    t.AddTotal(credit);
    t.Add(item_code, credit, config.item_capacity, false);
  }
  if (!e.query.empty()) {
    QueryTokens tokens;
    TokenizeQuery(e.query, &tokens);
    if (tokens.count > 0) {
      InterestTable& t = table(InterestKind::kKeyword);
      t.AddTotal(credit);
      for (size_t i = 0; i < tokens.count; ++i) {
        t.Add(ctx.pool.Intern(tokens.tokens[i]), credit, config.keyword_capacity, false);
      }
    }
  }
}

void Profile::ApplyConsumption(const Event& e, double amount, const RfmInputs& before,
                               ProfileContext& ctx) {
  if (e.type == EventType::kPurchase) {
    monetary_ += amount;
    last_purchase_ms_ = std::max(last_purchase_ms_, e.ts_ms);
    bool new_order = true;
    if (!e.order_id.empty()) {
      // One order per distinct order id among the last kRecentOrders: the lines of one order
      // arrive together, so a short memory de-duplicates them without a per-user set.
      Extras& x = extras();
      const uint32_t key = IdKey(e.order_id);
      for (uint32_t seen : x.recent_orders) new_order &= seen != key;
      if (new_order) {
        x.recent_orders[x.next_order_slot] = key;
        x.next_order_slot = static_cast<uint8_t>((x.next_order_slot + 1) % kRecentOrders);
      }
    }
    if (new_order && orders_ != UINT32_MAX) ++orders_;
    if (ctx.population != nullptr) ctx.population->Update(before, rfm_inputs());
  } else if (e.type == EventType::kRefund && amount > 0) {
    extras().refund_amount += amount;
  }

  const std::string_view category = e.category_key();
  if (IsPricedBehaviour(e.type) && e.has_price() && !category.empty()) {
    // Percentile against the distribution before this price joins it.
    const double weight = ctx.config->type_weight[static_cast<int>(e.type)];
    if (weight > 0) {
      if (std::optional<double> pct = ctx.prices.Percentile(category, e.price)) {
        price_percentile_sum_ += static_cast<float>(weight * *pct);
        price_weight_ += static_cast<float>(weight);
        if (price_weight_ > 0x1p20f) {
          price_percentile_sum_ *= 0.5f;
          price_weight_ *= 0.5f;
        }
      }
    }
    ctx.prices.Add(category, e.price);
  }
}

double Profile::DecayFactor(int64_t now_ms, int64_t half_life_ms) const {
  half_life_ms = std::max<int64_t>(1, half_life_ms);
  return std::exp2(static_cast<double>(anchor_ms_ - now_ms) / static_cast<double>(half_life_ms));
}

std::vector<ScoredInterest> Profile::TopInterests(InterestKind kind, const ProfileContext& ctx,
                                                  int64_t now_ms, size_t limit) const {
  const InterestTable& t = interests(kind);
  const double decay = DecayFactor(now_ms, ctx.config->half_life_ms);
  const double total = t.total();
  std::vector<ScoredInterest> out;
  out.reserve(t.size());
  for (const InterestTable::Entry& e : t.entries()) {
    ScoredInterest s;
    s.key = ctx.pool.Get(e.code());
    s.score = e.score * decay;
    s.share = total > 0 ? std::clamp(e.score / total, 0.0, 1.0) : 0.0;
    s.error = static_cast<double>(e.error) * decay;
    s.direct = kind != InterestKind::kCategory || e.marked();
    out.push_back(s);
  }
  std::sort(out.begin(), out.end(), [](const ScoredInterest& a, const ScoredInterest& b) {
    return a.score != b.score ? a.score > b.score : a.key < b.key;
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

double Profile::InterestShare(InterestKind kind, std::string_view key,
                              const ProfileContext& ctx) const {
  const InterestTable& t = interests(kind);
  const double total = t.total();
  if (!(total > 0)) return 0;
  for (const InterestTable::Entry& e : t.entries()) {
    if (ctx.pool.Get(e.code()) == key) return std::clamp(e.score / total, 0.0, 1.0);
  }
  return 0;
}

double Profile::avg_session_ms() const {
  return Ratio(static_cast<double>(sessions_.total_duration_ms()), sessions_.count());
}

double Profile::avg_session_events() const {
  return Ratio(static_cast<double>(events()), sessions_.count());
}

double Profile::aov() const { return Ratio(monetary_, orders_); }

RfmInputs Profile::rfm_inputs() const {
  RfmInputs in;
  in.buyer = purchases() > 0;
  in.last_purchase_ms = last_purchase_ms_;
  in.orders = orders_;
  in.monetary = monetary_;
  return in;
}

double Profile::price_index() const {
  return price_weight_ > 0 ? std::clamp<double>(price_percentile_sum_ / price_weight_, 0.0, 1.0)
                           : kNaN;
}

std::string_view Profile::price_tier() const {
  const double index = price_index();
  if (std::isnan(index)) return "";
  if (index < 0.33) return "budget";
  if (index > 0.67) return "premium";
  return "mid";
}

double Profile::avg_rating() const {
  if (!extras_ || extras_->rating_count == 0) return kNaN;
  return static_cast<double>(extras_->rating_sum) / extras_->rating_count;
}

double Profile::cart_rate() const {
  return Ratio(count(EventType::kCart), count(EventType::kView));
}
double Profile::purchase_rate() const {
  return Ratio(count(EventType::kPurchase), count(EventType::kCart));
}
double Profile::conversion_rate() const {
  return Ratio(count(EventType::kPurchase), count(EventType::kView));
}

LifecycleStage Profile::Lifecycle(const ProfileConfig& config, int64_t now_ms) const {
  if (empty() || now_ms - first_seen_ms_ < config.new_ms) return LifecycleStage::kNew;
  const int64_t idle = now_ms - last_seen_ms_;
  if (idle <= config.dormant_after_ms) return LifecycleStage::kActive;
  if (idle <= config.churned_after_ms) return LifecycleStage::kDormant;
  return LifecycleStage::kChurned;
}

std::string_view Profile::attributes_json() const {
  if (!extras_ || extras_->attributes_json.empty()) return "{}";
  return extras_->attributes_json;
}

absl::Status Profile::SetAttributes(std::string_view json_object, bool merge) {
  // One parser per thread: it keeps its buffers between calls.
  thread_local simdjson::dom::parser parser;
  // (key, minified value) in output order; later duplicates replace earlier ones.
  std::vector<std::pair<std::string, std::string>> fields;
  auto put = [&fields](std::string_view key, std::string value) {
    for (auto& f : fields) {
      if (f.first == key) {
        f.second = std::move(value);
        return;
      }
    }
    fields.emplace_back(std::string(key), std::move(value));
  };
  auto parse_into = [&](std::string_view text, bool is_patch) -> absl::Status {
    simdjson::dom::element doc;
    if (auto error = parser.parse(text.data(), text.size()).get(doc); error) {
      return absl::InvalidArgumentError(std::string("attributes: invalid JSON: ") +
                                        simdjson::error_message(error));
    }
    simdjson::dom::object object;
    if (doc.get_object().get(object)) {
      return absl::InvalidArgumentError("attributes: expected a JSON object");
    }
    for (auto field : object) {
      if (field.value.is_null()) {
        if (is_patch) std::erase_if(fields, [&](auto& f) { return f.first == field.key; });
        continue;
      }
      put(field.key, simdjson::minify(field.value));
    }
    return absl::OkStatus();
  };
  if (merge && extras_ && !extras_->attributes_json.empty()) {
    if (absl::Status s = parse_into(extras_->attributes_json, false); !s.ok()) return s;
  }
  if (absl::Status s = parse_into(json_object, true); !s.ok()) return s;

  JsonWriter w;
  w.BeginObject();
  for (const auto& [key, value] : fields) {
    w.Key(key);
    w.Raw(value);
  }
  w.EndObject();
  std::string json = w.Take();
  if (json.size() > kMaxAttributesBytes) {
    return absl::InvalidArgumentError("attributes: larger than 64 KiB");
  }
  if (fields.empty()) {
    if (extras_) extras_->attributes_json.clear();
    if (extras_) extras_->attributes_json.shrink_to_fit();
    return absl::OkStatus();
  }
  extras().attributes_json = std::move(json);
  extras_->attributes_json.shrink_to_fit();
  return absl::OkStatus();
}

size_t Profile::MemoryBytes() const {
  size_t bytes = sizeof(Profile);
  for (const InterestTable& t : interest_tables_) bytes += t.HeapBytes();
  bytes += daily_.HeapBytes() + sequence_.HeapBytes();
  if (extras_) {
    bytes += MallocChunkBytes(sizeof(Extras));
    // std::string keeps up to 15 characters inline (SSO).
    const size_t capacity = extras_->attributes_json.capacity();
    if (capacity > 15) bytes += MallocChunkBytes(capacity + 1);
    if (extras_->category_sentiment.capacity() > 0) {
      bytes += MallocChunkBytes(extras_->category_sentiment.capacity() * sizeof(CategorySentiment));
    }
  }
  return bytes;
}

void Profile::AddReviewSentiment(double score, std::string_view category_key,
                                 ProfileContext& ctx) {
  if (!std::isfinite(score)) return;
  score = std::clamp(score, 0.0, 1.0);
  Extras& x = extras();
  x.sentiment_sum += score;
  if (x.sentiment_count != UINT32_MAX) ++x.sentiment_count;
  if (category_key.empty()) return;
  const uint32_t code = ctx.pool.Intern(category_key);
  std::vector<CategorySentiment>& cats = x.category_sentiment;
  for (CategorySentiment& c : cats) {
    if (c.category == code) {
      c.sum += static_cast<float>(score);
      if (c.count != UINT32_MAX) ++c.count;
      return;
    }
  }
  if (cats.size() < static_cast<size_t>(kSentimentCategories)) {
    cats.push_back(CategorySentiment{code, 1, static_cast<float>(score)});
    return;
  }
  // Full: the category with the fewest reviews makes room (a bounded profile beats a complete one).
  auto fewest = std::min_element(cats.begin(), cats.end(),
                                 [](const auto& a, const auto& b) { return a.count < b.count; });
  *fewest = CategorySentiment{code, 1, static_cast<float>(score)};
}

double Profile::satisfaction() const {
  if (!extras_ || extras_->sentiment_count == 0) return std::nan("");
  return extras_->sentiment_sum / extras_->sentiment_count;
}

std::vector<Profile::CategorySentiment> Profile::category_sentiment() const {
  if (!extras_) return {};
  std::vector<CategorySentiment> out = extras_->category_sentiment;
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.count > b.count; });
  return out;
}

}  // namespace persona
