// The per-user profile: every feature Persona keeps about one user, updated incrementally one
// event at a time (u_t = f(u_{t-1}, x_t)) by the partition's writer thread. Apply is O(1) per
// event (bounded by the configured capacities) and the profile's memory is bounded whatever the
// number of events: about 300 bytes inline plus a few small heap blocks (~1.3 KB on average for a
// taobao user with ~100 events).
//
// Features and where they live:
//   identity     first/last seen (event time), free-form attributes (JSON, in `extras`)
//   statistics   all-time counts per event type (uint32, saturating); per-UTC-day buckets for the
//                last 30 days of activity, summed into 1/7/30-day windows at read time
//   sessions     SessionTracker + HourDayHistogram
//   interests    four InterestTables (categories incl. ancestors, brands, items, keywords) of
//                time-decayed, type-weighted scores (see "Decay" below)
//   consumption  purchases, orders, monetary, refunds, last purchase, price index, ratings
//   sequence     the last N item events (ItemSequence)
//
// Decay: an event of weight w at time t adds w * 2^((t - A) / half_life) to a score, where the
// anchor A is a multiple of half_life fixed per profile. Sums of such terms do not depend on the
// order of the events (up to floating-point addition order). When t - A exceeds 64 half-lives,
// A moves k half-lives later and every score is multiplied by 2^-k, which is exact in binary
// floating point, so when that happens does not matter either. At read time a score is decayed
// to `now` by multiplying with 2^((A - now) / half_life). A late event simply adds a term with
// a negative exponent.
//
// Order dependence, stated once: counts, day buckets, first/last seen, monetary, last purchase and
// interest sums (for tables that never evicted) are order-independent. Sessions, Space-Saving
// evictions, order de-duplication (last 4 order ids), the price index (percentiles against the
// category distribution as it was at the time) and equal-second ties in the sequence depend on
// arrival order.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "event/event.h"
#include "profile/activity_rhythm.h"
#include "profile/daily_activity.h"
#include "profile/hour_day_histogram.h"
#include "profile/interest_table.h"
#include "profile/item_sequence.h"
#include "profile/population.h"
#include "profile/profile_config.h"
#include "profile/session_tracker.h"

namespace persona {

struct ProfileContext;
class Profile;
void EncodeProfile(const Profile& p, const ProfileContext& ctx, std::string* out);
absl::Status DecodeProfile(std::string_view in, ProfileContext& ctx, Profile* p);

enum class InterestKind : uint8_t { kCategory = 0, kBrand, kItem, kKeyword };
inline constexpr int kInterestKindCount = 4;
// "categories", "brands", "items", "keywords".
std::string_view InterestKindName(InterestKind kind);

// One interest entry as reported: score and error decayed to `now`.
struct ScoredInterest {
  std::string_view key;  // valid while the partition's pool lives
  double score = 0;      // decayed to now
  double share = 0;      // score / table total, in [0, 1]
  double error = 0;      // Space-Saving overestimate bound, decayed to now (0 when exact)
  bool direct = false;   // categories: named by an event, not only an ancestor of one
};

enum class LifecycleStage : uint8_t { kNew, kActive, kDormant, kChurned };
// "new", "active", "dormant", "churned".
std::string_view LifecycleStageName(LifecycleStage s);

class Profile {
 public:
  // Interest anchors move after this many half-lives (scores stay below 2^64 * weight sum).
  static constexpr int kRebaseHalfLives = 64;
  // Purchases with an order_id count as one order per distinct id among the last this many.
  static constexpr int kRecentOrders = 4;

  Profile() = default;
  Profile(const Profile& other);
  Profile& operator=(const Profile& other);
  Profile(Profile&&) noexcept = default;
  Profile& operator=(Profile&&) noexcept = default;

  // Updates every feature with one event (validated upstream: ts >= 2000, rating 0..5, price
  // >= 0 or NaN). Interns strings into ctx.pool, feeds ctx.prices, and keeps ctx.population in
  // sync when the RFM inputs change (purchases). Writer thread only.
  void Apply(const Event& e, ProfileContext& ctx);

  // sizeof(Profile) plus every heap block it owns, each counted as the malloc chunk it occupies
  // (8-byte header, 16-byte rounding). Strings in the pool are shared and not counted.
  size_t MemoryBytes() const;

  uint64_t tag_bits = 0;       // set by the engine (tag rules), persisted
  uint64_t timeline_head = 0;  // engine-managed, opaque here, persisted

  // Sets the basic attributes (age, gender, city, ... any JSON values) from a JSON object. With
  // `merge` the object is applied as a top-level merge patch: its keys replace existing ones and
  // a null value deletes a key; without it, it replaces all attributes. Null values are never
  // stored. Returns InvalidArgument (leaving the attributes unchanged) when `json_object` is not a
  // JSON object or the result would exceed 64 KiB.
  absl::Status SetAttributes(std::string_view json_object, bool merge);
  // The attributes as a minified JSON object, "{}" when none.
  std::string_view attributes_json() const;

  // ---- identity
  bool empty() const { return events() == 0; }
  int64_t first_seen_ms() const { return first_seen_ms_; }
  int64_t last_seen_ms() const { return last_seen_ms_; }

  // ---- behaviour statistics
  uint32_t count(EventType t) const { return counts_[static_cast<int>(t)]; }
  uint64_t events() const;
  const DailyActivity& daily() const { return daily_; }
  // Counts and purchase amount over the `days` UTC days ending with the day of `now_ms`.
  ActivityTotals Window(int64_t now_ms, int days) const { return daily_.Window(now_ms, days); }

  // ---- sessions
  const SessionTracker& sessions() const { return sessions_; }
  const HourDayHistogram& active_hours() const { return hours_; }
  // Mean session duration in ms and events per session; NaN without sessions.
  double avg_session_ms() const;
  double avg_session_events() const;

  // ---- interests
  const InterestTable& interests(InterestKind kind) const {
    return interest_tables_[static_cast<int>(kind)];
  }
  int64_t interest_anchor_ms() const { return anchor_ms_; }
  // The factor that decays stored (anchor-relative) scores to `now_ms`.
  double DecayFactor(int64_t now_ms, int64_t half_life_ms) const;
  // The table's entries decayed to `now_ms`, highest score first (ties by key), at most `limit`.
  std::vector<ScoredInterest> TopInterests(InterestKind kind, const ProfileContext& ctx,
                                           int64_t now_ms, size_t limit) const;
  // The share (score / total, order-independent of `now`) of the entry whose key is `key`, 0
  // when absent. Compares strings through pool.Get, so it is safe on reader threads.
  double InterestShare(InterestKind kind, std::string_view key, const ProfileContext& ctx) const;

  // ---- consumption
  uint32_t purchases() const { return count(EventType::kPurchase); }
  uint32_t orders() const { return orders_; }
  double monetary() const { return monetary_; }
  double refund_amount() const { return extras_ ? extras_->refund_amount : 0.0; }
  double net_monetary() const { return monetary_ - refund_amount(); }
  // Average order value: monetary / orders, NaN without orders.
  double aov() const;
  int64_t last_purchase_ms() const { return last_purchase_ms_; }  // 0 when none
  RfmInputs rfm_inputs() const;
  // The type-weighted mean percentile of the user's prices within their categories, NaN when
  // no priced event fell in a category with enough prices.
  double price_index() const;
  // "budget" (< 0.33), "mid", "premium" (> 0.67), or "" when price_index() is NaN.
  std::string_view price_tier() const;
  uint32_t rating_count() const { return extras_ ? extras_->rating_count : 0; }
  // Mean of the 1..5 ratings given, NaN without ratings.
  double avg_rating() const;

  // ---- funnel (NaN when the denominator is 0)
  double cart_rate() const;        // carts / views
  double purchase_rate() const;    // purchases / carts
  double conversion_rate() const;  // purchases / views

  // ---- lifecycle at read time
  LifecycleStage Lifecycle(const ProfileConfig& config, int64_t now_ms) const;

  // ---- recent item sequence
  const ItemSequence& sequence() const { return sequence_; }

  // ---- model-derived signals, written at update time by the predict operator (Predictor) and
  // persisted with the profile.
  const ActivityRhythm& rhythm() const { return rhythm_; }
  // AnomalyFlag bits (0 = nothing abnormal).
  uint8_t anomaly_flags() const { return anomaly_flags_; }
  void set_anomaly_flags(uint8_t flags) { anomaly_flags_ = flags; }
  // The K-means segment assigned at the latest update, -1 when none (no segment model).
  int16_t segment() const { return segment_; }
  void set_segment(int16_t segment) { segment_ = segment; }
  // Adds one review's sentiment score in [0, 1] (1 = positive), to the overall satisfaction and,
  // when `category_key` is not empty, to that category's sentiment (at most kSentimentCategories
  // categories are kept; a new one replaces the one with the fewest reviews). Writer thread only.
  void AddReviewSentiment(double score, std::string_view category_key, ProfileContext& ctx);
  static constexpr int kSentimentCategories = 8;
  // Mean review sentiment in [0, 1], NaN without scored reviews; and the number scored.
  double satisfaction() const;
  uint32_t sentiment_count() const { return extras_ ? extras_->sentiment_count : 0; }
  struct CategorySentiment {
    uint32_t category = 0;  // pool code of the category key
    uint32_t count = 0;
    float sum = 0;  // sum of scores
  };
  // Per-category review sentiment, most reviewed first; empty without scored reviews.
  std::vector<CategorySentiment> category_sentiment() const;

 private:
  friend void EncodeProfile(const Profile& p, const ProfileContext& ctx, std::string* out);
  friend absl::Status DecodeProfile(std::string_view in, ProfileContext& ctx, Profile* p);

  // Rarely used features, allocated on first use so that the common profile pays 8 bytes.
  struct Extras {
    std::string attributes_json;  // empty = none
    double refund_amount = 0;
    uint64_t rating_sum = 0;
    uint32_t rating_count = 0;
    uint8_t next_order_slot = 0;
    std::array<uint32_t, kRecentOrders> recent_orders{};  // order id hashes | 1, 0 = empty
    double sentiment_sum = 0;
    uint32_t sentiment_count = 0;
    std::vector<CategorySentiment> category_sentiment;  // at most kSentimentCategories
  };
  Extras& extras();

  // Returns w * 2^((ts - A) / half_life), moving the anchor first when ts is too far ahead.
  double DecayedCredit(double weight, int64_t ts_ms, int64_t half_life_ms);
  void CreditInterests(const Event& e, uint32_t item_code, ProfileContext& ctx);
  void ApplyConsumption(const Event& e, double amount, const RfmInputs& before,
                        ProfileContext& ctx);
  InterestTable& table(InterestKind kind) { return interest_tables_[static_cast<int>(kind)]; }

  int64_t first_seen_ms_ = 0;
  int64_t last_seen_ms_ = 0;
  int64_t anchor_ms_ = 0;
  int64_t last_purchase_ms_ = 0;
  double monetary_ = 0;
  std::array<uint32_t, kEventTypeCount> counts_{};
  uint32_t orders_ = 0;
  // Price index as a weighted mean: sum of weight * percentile, and sum of weights. Floats are
  // plenty for a mean in [0, 1]; both are halved past 2^20 so the float sum keeps its precision.
  float price_percentile_sum_ = 0;
  float price_weight_ = 0;
  std::array<InterestTable, kInterestKindCount> interest_tables_;
  SessionTracker sessions_;
  HourDayHistogram hours_;
  DailyActivity daily_;
  ItemSequence sequence_;
  ActivityRhythm rhythm_;
  int16_t segment_ = -1;
  uint8_t anomaly_flags_ = 0;
  std::unique_ptr<Extras> extras_;
};

}  // namespace persona
