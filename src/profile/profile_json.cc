#include "profile/profile_json.h"

#include <cmath>

#include "common/time_util.h"

namespace persona {
namespace {

constexpr std::string_view kSectionNames[] = {"identity",  "stats",       "sessions",
                                              "interests", "consumption", "funnel",
                                              "lifecycle", "sequence",    "tags",
                                              "signals",   "predictions"};
constexpr std::string_view kWeekdays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void Time(JsonWriter& w, std::string_view key, int64_t ms) {
  w.Key(key).String(FormatIsoTime(ms));
  w.Key(std::string(key) + "_ms").Int(ms);
}

void NullableTime(JsonWriter& w, std::string_view key, int64_t ms, bool present) {
  if (present) {
    Time(w, key, ms);
  } else {
    w.Key(key).Null();
    w.Key(std::string(key) + "_ms").Null();
  }
}

double Days(int64_t ms) { return static_cast<double>(ms) / static_cast<double>(kDayMs); }

void Counts(JsonWriter& w, const ActivityTotals& t) {
  w.BeginObject();
  w.Key("events").Uint(t.events());
  for (int i = 0; i < kEventTypeCount; ++i) {
    w.Key(EventTypeName(static_cast<EventType>(i))).Uint(t.counts[i]);
  }
  w.EndObject();
}

void Identity(JsonWriter& w, const Profile& p) {
  w.Key("identity").BeginObject();
  NullableTime(w, "first_seen", p.first_seen_ms(), !p.empty());
  NullableTime(w, "last_seen", p.last_seen_ms(), !p.empty());
  w.Key("attributes").Raw(p.attributes_json());
  w.EndObject();
}

void Stats(JsonWriter& w, const Profile& p, int64_t now_ms) {
  w.Key("stats").BeginObject();
  w.Key("events").Uint(p.events());
  w.Key("counts").BeginObject();
  for (int i = 0; i < kEventTypeCount; ++i) {
    const auto t = static_cast<EventType>(i);
    w.Key(EventTypeName(t)).Uint(p.count(t));
  }
  w.EndObject();
  w.Key("windows").BeginObject();
  for (int days : {1, 7, 30}) {
    w.Key(std::to_string(days) + "d");
    Counts(w, p.Window(now_ms, days));
  }
  w.EndObject();
  w.Key("window_resolution").String("utc_day");
  w.EndObject();
}

void Sessions(JsonWriter& w, const Profile& p) {
  const SessionTracker& s = p.sessions();
  w.Key("sessions").BeginObject();
  w.Key("count").Uint(s.count());
  w.Key("avg_duration_minutes").Double(p.avg_session_ms() / kMinuteMs);
  w.Key("avg_events").Double(p.avg_session_events());
  w.Key("hour_of_day").BeginArray();
  for (uint16_t h : p.active_hours().hours()) w.Uint(h);
  w.EndArray();
  w.Key("day_of_week").BeginObject();
  for (int d = 0; d < 7; ++d) w.Key(kWeekdays[d]).Uint(p.active_hours().weekdays()[d]);
  w.EndObject();
  w.EndObject();
}

void Interests(JsonWriter& w, const Profile& p, const ProfileContext& ctx, int64_t now_ms) {
  w.Key("interests").BeginObject();
  w.Key("half_life_days").Double(Days(ctx.config->half_life_ms));
  for (int k = 0; k < kInterestKindCount; ++k) {
    const auto kind = static_cast<InterestKind>(k);
    const InterestTable& t = p.interests(kind);
    w.Key(InterestKindName(kind)).BeginObject();
    w.Key("exact").Bool(t.exact());
    w.Key("evicted").Uint(t.evictions());
    w.Key("top").BeginArray();
    for (const ScoredInterest& s : p.TopInterests(kind, ctx, now_ms, t.size())) {
      w.BeginObject();
      w.Key("key").String(s.key);
      w.Key("score").Double(s.score);
      w.Key("share").Double(s.share);
      if (!t.exact()) w.Key("error").Double(s.error);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
}

void Consumption(JsonWriter& w, const Profile& p, const ProfileContext& ctx, int64_t now_ms) {
  const ActivityTotals month = p.Window(now_ms, 30);
  const RfmInputs rfm = p.rfm_inputs();
  w.Key("consumption").BeginObject();
  w.Key("purchases").Uint(p.purchases());
  w.Key("orders").Uint(p.orders());
  w.Key("monetary").Double(p.monetary());
  w.Key("aov").Double(p.aov());
  w.Key("refunds").Uint(p.count(EventType::kRefund));
  w.Key("refund_amount").Double(p.refund_amount());
  w.Key("net_monetary").Double(p.net_monetary());
  NullableTime(w, "last_purchase", p.last_purchase_ms(), rfm.buyer);
  w.Key("purchases_30d").Uint(month.counts[static_cast<int>(EventType::kPurchase)]);
  w.Key("monetary_30d").Double(month.purchase_amount);
  w.Key("rfm").BeginObject();
  const Population* pop = ctx.population;
  w.Key("recency").Int(pop ? pop->RecencyScore(rfm, now_ms) : 0);
  w.Key("frequency").Int(pop ? pop->FrequencyScore(rfm) : 0);
  w.Key("monetary").Int(pop ? pop->MonetaryScore(rfm) : 0);
  w.EndObject();
  w.Key("price_index").Double(p.price_index());
  if (p.price_tier().empty()) {
    w.Key("price_tier").Null();
  } else {
    w.Key("price_tier").String(p.price_tier());
  }
  w.Key("reviews").Uint(p.count(EventType::kReview));
  w.Key("ratings").Uint(p.rating_count());
  w.Key("avg_rating").Double(p.avg_rating());
  w.EndObject();
}

void Funnel(JsonWriter& w, const Profile& p) {
  w.Key("funnel").BeginObject();
  w.Key("views").Uint(p.count(EventType::kView));
  w.Key("carts").Uint(p.count(EventType::kCart));
  w.Key("purchases").Uint(p.purchases());
  w.Key("cart_rate").Double(p.cart_rate());
  w.Key("purchase_rate").Double(p.purchase_rate());
  w.Key("conversion_rate").Double(p.conversion_rate());
  w.EndObject();
}

void Lifecycle(JsonWriter& w, const Profile& p, const ProfileContext& ctx, int64_t now_ms) {
  w.Key("lifecycle").BeginObject();
  w.Key("stage").String(LifecycleStageName(p.Lifecycle(*ctx.config, now_ms)));
  w.Key("days_since_first_seen").Double(Days(now_ms - p.first_seen_ms()));
  w.Key("days_since_last_seen").Double(Days(now_ms - p.last_seen_ms()));
  w.EndObject();
}

void Sequence(JsonWriter& w, const Profile& p, const ProfileContext& ctx) {
  w.Key("sequence").BeginArray();
  p.sequence().ForEach([&](const ItemSequence::Item& item) {
    w.BeginObject();
    w.Key("item").String(ctx.pool.Get(item.code));
    w.Key("type").String(EventTypeName(item.type));
    Time(w, "time", item.ts_s * 1000);
    w.EndObject();
  });
  w.EndArray();
}

void Tags(JsonWriter& w, const Profile& p, std::span<const std::string> tag_names) {
  w.Key("tags").BeginArray();
  for (size_t i = 0; i < 64 && i < tag_names.size(); ++i) {
    if (p.tag_bits & (uint64_t{1} << i)) w.String(tag_names[i]);
  }
  w.EndArray();
}

void NumberOrNull(JsonWriter& w, std::string_view key, double v) {
  if (std::isfinite(v)) {
    w.Key(key).Double(v);
  } else {
    w.Key(key).Null();
  }
}

void Signals(JsonWriter& w, const Profile& p, const ProfileContext& ctx) {
  w.Key("signals").BeginObject();
  w.Key("sentiment").BeginObject();
  NumberOrNull(w, "satisfaction", p.satisfaction());
  w.Key("reviews_scored").Int(p.sentiment_count());
  w.Key("categories").BeginArray();
  for (const Profile::CategorySentiment& c : p.category_sentiment()) {
    w.BeginObject();
    w.Key("key").String(ctx.pool.Get(c.category));
    w.Key("score").Double(c.count > 0 ? c.sum / c.count : 0.0);
    w.Key("reviews").Int(c.count);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  if (p.segment() >= 0) {
    w.Key("segment").Int(p.segment());
  } else {
    w.Key("segment").Null();
  }
  w.Key("anomalies").BeginObject();
  w.Key("flags").BeginArray();
  for (int i = 0; i < kAnomalyFlagCount; ++i) {
    const uint8_t bit = static_cast<uint8_t>(1u << i);
    if (p.anomaly_flags() & bit) w.String(AnomalyFlagName(bit));
  }
  w.EndArray();
  const ActivityRhythm& r = p.rhythm();
  w.Key("max_events_per_minute").Int(r.max_minute_events);
  NumberOrNull(w, "gap_variation", r.GapVariation());
  w.Key("longest_view_streak").Int(r.max_view_streak);
  w.EndObject();
  w.EndObject();
}

}  // namespace

std::optional<uint32_t> ParseSections(std::string_view comma_list) {
  if (Trim(comma_list).empty()) return kAll;
  uint32_t sections = 0;
  while (true) {
    const size_t comma = comma_list.find(',');
    const std::string_view name = Trim(comma_list.substr(0, comma));
    if (name == "all") {
      sections = kAll;
    } else {
      bool found = false;
      for (size_t i = 0; i < std::size(kSectionNames); ++i) {
        if (name == kSectionNames[i]) {
          sections |= 1u << i;
          found = true;
        }
      }
      if (!found) return std::nullopt;
    }
    if (comma == std::string_view::npos) break;
    comma_list.remove_prefix(comma + 1);
  }
  return sections;
}

void WriteProfileJson(JsonWriter& w, std::string_view user_id, const Profile& p,
                      const ProfileContext& ctx, int64_t now_ms, uint32_t sections,
                      std::span<const std::string> tag_names,
                      const std::function<void(JsonWriter&)>& extra) {
  w.BeginObject();
  w.Key("user_id").String(user_id);
  Time(w, "as_of", now_ms);
  if (sections & kIdentity) Identity(w, p);
  if (sections & kStats) Stats(w, p, now_ms);
  if (sections & kSessions) Sessions(w, p);
  if (sections & kInterests) Interests(w, p, ctx, now_ms);
  if (sections & kConsumption) Consumption(w, p, ctx, now_ms);
  if (sections & kFunnel) Funnel(w, p);
  if (sections & kLifecycle) Lifecycle(w, p, ctx, now_ms);
  if (sections & kSequence) Sequence(w, p, ctx);
  if (sections & kTags) Tags(w, p, tag_names);
  if (sections & kSignals) Signals(w, p, ctx);
  if (extra) extra(w);
  w.EndObject();
}

}  // namespace persona
