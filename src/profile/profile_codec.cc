// Body fields of format version 1, in order:
//   fixed64 tag_bits, fixed64 timeline_head
//   zigzag first_seen_ms, zigzag last_seen_ms, zigzag anchor_ms, zigzag last_purchase_ms
//   double monetary; 9 x varint count (EventType order); varint orders
//   float price percentile sum, float price weight
//   4 x interest table (categories, brands, items, keywords):
//       varint size, varint evictions, double total,
//       size x (varint (string ref << 1 | mark), double score, float error)
//   sessions: varint count, varint closed seconds, zigzag current start, varint current length ms,
//       fixed32 current session key
//   24 x varint hour-of-day bucket, 7 x varint day-of-week bucket
//   varint length + day buckets (DailyActivity's own packed format; no string references)
//   sequence: varint n, zigzag first time (s), n x (varint (seconds since previous << 4 | type),
//       varint string ref)
//   extras: byte 0 (none) or 1, then varint length + attributes JSON, double refund amount,
//       varint rating sum, varint rating count, varint next order slot, 4 x fixed32 order key
//       [version 2: double sentiment sum, varint sentiment count, varint n categories,
//        n x (varint string ref, varint count, float sum)]
// Version 2 appends (version 1 blobs decode with these at their defaults):
//   rhythm: zigzag last event ms, varint minute start s, 4 x varint (minute events, max minute
//       events, view streak, max view streak), varint gaps, float gap mean, float gap M2
//   zigzag segment, byte anomaly flags
#include "profile/profile_codec.h"

#include <bit>
#include <cmath>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/hash.h"
#include "common/varint.h"
#include "profile/compact_bytes.h"

namespace persona {
namespace {

constexpr char kMagic[3] = {'P', 'R', 'F'};
constexpr uint8_t kVersion = 2;

// Inline varint appends (the same LEB128 bytes as common/varint.h): a profile has a few hundred
// varints and an out-of-line call per varint showed up as a tenth of the encode time.
void AppendVarint(std::string* out, uint64_t v) {
  uint8_t buf[kMaxVarintBytes];
  out->append(reinterpret_cast<const char*>(buf), PutVarint(buf, v));
}
void AppendFixed32(std::string* out, uint32_t v) {
  const char bytes[4] = {static_cast<char>(v), static_cast<char>(v >> 8),
                         static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
  out->append(bytes, 4);
}
void AppendFixed64Bits(std::string* out, uint64_t v) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(v >> (8 * i));
  out->append(bytes, 8);
}
void AppendDouble(std::string* out, double v) {
  AppendFixed64Bits(out, std::bit_cast<uint64_t>(v));
}
void AppendFloat(std::string* out, float v) { AppendFixed32(out, std::bit_cast<uint32_t>(v)); }
void AppendSigned(std::string* out, int64_t v) { AppendVarint(out, ZigZag(v)); }

// Assigns string-table indexes to pool codes in first-use order.
class StringTableBuilder {
 public:
  StringTableBuilder(const StringPool& pool, size_t expected) : pool_(pool) {
    refs_.reserve(expected);
    codes_.reserve(expected);
  }
  uint32_t Ref(uint32_t code) {
    auto [it, inserted] = refs_.try_emplace(code, static_cast<uint32_t>(codes_.size()));
    if (inserted) codes_.push_back(code);
    return it->second;
  }
  void AppendTo(std::string* out) const {
    AppendVarint(out, codes_.size());
    for (uint32_t code : codes_) {
      const std::string_view s = pool_.Get(code);
      AppendVarint(out, s.size());
      out->append(s);
    }
  }

 private:
  const StringPool& pool_;
  absl::flat_hash_map<uint32_t, uint32_t> refs_;
  std::vector<uint32_t> codes_;
};

// Bounds-checked reads from the front of a view; every method returns false at the first
// malformed or missing byte, and the decoder stops there.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Varint(uint64_t* v) {
    const auto* p = reinterpret_cast<const uint8_t*>(in_.data());
    const uint8_t* after = GetVarint(p, p + in_.size(), v);
    if (after == nullptr) return false;
    in_.remove_prefix(static_cast<size_t>(after - p));
    return true;
  }
  bool Varint32(uint32_t* v) {
    uint64_t x;
    if (!Varint(&x) || x > UINT32_MAX) return false;
    *v = static_cast<uint32_t>(x);
    return true;
  }
  bool Signed(int64_t* v) {
    uint64_t x;
    if (!Varint(&x)) return false;
    *v = UnZigZag(x);
    return true;
  }
  bool Fixed64(uint64_t* v) { return ReadFixed64(&in_, v); }
  bool Fixed32(uint32_t* v) {
    if (in_.size() < 4) return false;
    uint32_t x = 0;
    for (int i = 0; i < 4; ++i) x |= static_cast<uint32_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(4);
    *v = x;
    return true;
  }
  bool Double(double* v) {
    uint64_t bits;
    if (!Fixed64(&bits)) return false;
    *v = std::bit_cast<double>(bits);
    return true;
  }
  bool Float(float* v) {
    uint32_t bits;
    if (!Fixed32(&bits)) return false;
    *v = std::bit_cast<float>(bits);
    return true;
  }
  bool Bytes(size_t n, std::string_view* v) {
    if (n > in_.size()) return false;
    *v = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool LengthPrefixed(std::string_view* v) {
    uint64_t n;
    return Varint(&n) && Bytes(n, v);
  }
  size_t remaining() const { return in_.size(); }

 private:
  std::string_view in_;
};

bool FiniteNonNegative(double v) { return std::isfinite(v) && v >= 0; }

// Times beyond +-2^53 ms (285,000 years) can only come from corruption; rejecting them keeps
// later time arithmetic (now - first_seen, ...) free of overflow.
constexpr int64_t kTimeLimitMs = int64_t{1} << 53;
bool PlausibleTime(int64_t ms) { return ms > -kTimeLimitMs && ms < kTimeLimitMs; }
bool PlausibleSeconds(int64_t s) { return s > -kTimeLimitMs / 1000 && s < kTimeLimitMs / 1000; }

absl::Status Corrupt(std::string_view what) {
  return absl::DataLossError("profile blob: " + std::string(what));
}

}  // namespace

void EncodeProfile(const Profile& p, const ProfileContext& ctx, std::string* out) {
  size_t expected_strings =
      p.sequence_.size() + (p.extras_ ? p.extras_->category_sentiment.size() : 0);
  for (const InterestTable& t : p.interest_tables_) expected_strings += t.size();
  StringTableBuilder strings(ctx.pool, expected_strings);
  std::string body;
  body.reserve(256 + 16 * expected_strings + p.daily_.bytes().size() +
               (p.extras_ ? p.extras_->attributes_json.size() : 0));
  AppendFixed64Bits(&body, p.tag_bits);
  AppendFixed64Bits(&body, p.timeline_head);
  AppendSigned(&body, p.first_seen_ms_);
  AppendSigned(&body, p.last_seen_ms_);
  AppendSigned(&body, p.anchor_ms_);
  AppendSigned(&body, p.last_purchase_ms_);
  AppendDouble(&body, p.monetary_);
  for (uint32_t c : p.counts_) AppendVarint(&body, c);
  AppendVarint(&body, p.orders_);
  AppendFloat(&body, p.price_percentile_sum_);
  AppendFloat(&body, p.price_weight_);
  for (const InterestTable& t : p.interest_tables_) {
    AppendVarint(&body, t.size());
    AppendVarint(&body, t.evictions());
    AppendDouble(&body, t.total());
    for (const InterestTable::Entry& e : t.entries()) {
      AppendVarint(&body, (uint64_t{strings.Ref(e.code())} << 1) | (e.marked() ? 1 : 0));
      AppendDouble(&body, e.score);
      AppendFloat(&body, e.error);
    }
  }
  const SessionTracker& s = p.sessions_;
  AppendVarint(&body, s.count());
  AppendVarint(&body, s.closed_seconds());
  AppendSigned(&body, s.current_start_ms());
  AppendVarint(&body, static_cast<uint64_t>(s.current_end_ms() - s.current_start_ms()));
  AppendFixed32(&body, s.current_key());
  for (uint16_t h : p.hours_.hours()) AppendVarint(&body, h);
  for (uint16_t d : p.hours_.weekdays()) AppendVarint(&body, d);
  const std::string_view days = p.daily_.bytes();
  AppendVarint(&body, days.size());
  body.append(days);
  AppendVarint(&body, p.sequence_.size());
  bool first = true;
  int64_t previous = 0;
  p.sequence_.ForEach([&](const ItemSequence::Item& item) {
    if (first) {
      AppendSigned(&body, item.ts_s);
      previous = item.ts_s;
      first = false;
    }
    AppendVarint(&body, (static_cast<uint64_t>(item.ts_s - previous) << 4) |
                            static_cast<uint64_t>(item.type));
    AppendVarint(&body, strings.Ref(item.code));
    previous = item.ts_s;
  });
  if (const Profile::Extras* x = p.extras_.get()) {
    body.push_back(1);
    AppendVarint(&body, x->attributes_json.size());
    body.append(x->attributes_json);
    AppendDouble(&body, x->refund_amount);
    AppendVarint(&body, x->rating_sum);
    AppendVarint(&body, x->rating_count);
    AppendVarint(&body, x->next_order_slot);
    for (uint32_t key : x->recent_orders) AppendFixed32(&body, key);
    AppendDouble(&body, x->sentiment_sum);
    AppendVarint(&body, x->sentiment_count);
    AppendVarint(&body, x->category_sentiment.size());
    for (const Profile::CategorySentiment& c : x->category_sentiment) {
      AppendVarint(&body, strings.Ref(c.category));
      AppendVarint(&body, c.count);
      AppendFloat(&body, c.sum);
    }
  } else {
    body.push_back(0);
  }
  const ActivityRhythm& rh = p.rhythm_;
  AppendSigned(&body, rh.last_event_ms);
  AppendVarint(&body, rh.minute_start_s);
  AppendVarint(&body, rh.minute_events);
  AppendVarint(&body, rh.max_minute_events);
  AppendVarint(&body, rh.view_streak);
  AppendVarint(&body, rh.max_view_streak);
  AppendVarint(&body, rh.gaps);
  AppendFloat(&body, rh.gap_mean_s);
  AppendFloat(&body, rh.gap_m2);
  AppendSigned(&body, p.segment_);
  body.push_back(static_cast<char>(p.anomaly_flags_));

  const size_t start = out->size();
  out->append(kMagic, sizeof kMagic);
  out->push_back(static_cast<char>(kVersion));
  strings.AppendTo(out);
  out->append(body);
  AppendFixed32(out, static_cast<uint32_t>(
                         Hash64(std::string_view(*out).substr(start, out->size() - start))));
}

absl::Status SetEncodedTimelineHead(std::string* blob, uint64_t head) {
  std::string_view in = *blob;
  if (in.size() < sizeof kMagic + 1 + 4 || in.substr(0, 3) != std::string_view(kMagic, 3)) {
    return Corrupt("bad magic");
  }
  const std::string_view covered = in.substr(0, in.size() - 4);
  {
    Reader trailer(in.substr(in.size() - 4));
    uint32_t checksum = 0;
    trailer.Fixed32(&checksum);
    if (checksum != static_cast<uint32_t>(Hash64(covered))) return Corrupt("checksum mismatch");
  }
  Reader r(covered.substr(4));
  uint64_t string_count;
  if (!r.Varint(&string_count) || string_count > r.remaining()) return Corrupt("string table");
  for (uint64_t i = 0; i < string_count; ++i) {
    std::string_view s;
    if (!r.LengthPrefixed(&s)) return Corrupt("string table");
  }
  uint64_t tag_bits;
  if (!r.Fixed64(&tag_bits) || r.remaining() < 8) return Corrupt("identity");
  const size_t at = covered.size() - r.remaining();
  std::string head_bytes;
  AppendFixed64Bits(&head_bytes, head);
  blob->replace(at, 8, head_bytes);
  blob->resize(blob->size() - 4);
  AppendFixed32(blob, static_cast<uint32_t>(Hash64(*blob)));
  return absl::OkStatus();
}

absl::Status DecodeProfile(std::string_view in, ProfileContext& ctx, Profile* p) {
  if (in.size() < sizeof kMagic + 1 + 4) return Corrupt("too short");
  {
    Reader trailer(in.substr(in.size() - 4));
    uint32_t checksum = 0;
    trailer.Fixed32(&checksum);
    in.remove_suffix(4);
    if (checksum != static_cast<uint32_t>(Hash64(in))) return Corrupt("checksum mismatch");
  }
  if (in.substr(0, 3) != std::string_view(kMagic, 3)) return Corrupt("bad magic");
  const uint8_t version = static_cast<uint8_t>(in[3]);
  if (version < 1 || version > kVersion) return Corrupt("unknown format version");
  Reader r(in.substr(4));

  uint64_t string_count;
  if (!r.Varint(&string_count) || string_count > r.remaining()) return Corrupt("string table");
  std::vector<std::string_view> strings(string_count);
  for (std::string_view& s : strings) {
    if (!r.LengthPrefixed(&s)) return Corrupt("string table");
  }

  // Decode into a fresh profile with string-table indexes in place of pool codes; they are
  // mapped to codes only once the whole blob has been read.
  Profile q;
  uint64_t tag_bits, timeline_head;
  if (!r.Fixed64(&tag_bits) || !r.Fixed64(&timeline_head) || !r.Signed(&q.first_seen_ms_) ||
      !r.Signed(&q.last_seen_ms_) || !r.Signed(&q.anchor_ms_) || !r.Signed(&q.last_purchase_ms_) ||
      !r.Double(&q.monetary_)) {
    return Corrupt("identity");
  }
  if (!PlausibleTime(q.first_seen_ms_) || !PlausibleTime(q.last_seen_ms_) ||
      !PlausibleTime(q.anchor_ms_) || !PlausibleTime(q.last_purchase_ms_)) {
    return Corrupt("implausible time");
  }
  q.tag_bits = tag_bits;
  q.timeline_head = timeline_head;
  for (uint32_t& c : q.counts_) {
    if (!r.Varint32(&c)) return Corrupt("counts");
  }
  if (!r.Varint32(&q.orders_) || !r.Float(&q.price_percentile_sum_) || !r.Float(&q.price_weight_) ||
      !std::isfinite(q.monetary_) || !std::isfinite(q.price_percentile_sum_) ||
      !std::isfinite(q.price_weight_)) {
    return Corrupt("consumption");
  }

  struct DecodedTable {
    double total = 0;
    uint32_t evictions = 0;
    std::vector<InterestTable::Entry> entries;  // key holds the string ref (| mark)
  };
  std::array<DecodedTable, kInterestKindCount> tables;
  for (DecodedTable& t : tables) {
    uint64_t size;
    if (!r.Varint(&size) || size > InterestTable::kMaxCapacity || !r.Varint32(&t.evictions) ||
        !r.Double(&t.total) || !FiniteNonNegative(t.total)) {
      return Corrupt("interest table header");
    }
    t.entries.resize(size);
    for (InterestTable::Entry& e : t.entries) {
      uint64_t ref;
      if (!r.Varint(&ref) || (ref >> 1) >= strings.size() || !r.Double(&e.score) ||
          !r.Float(&e.error) || !FiniteNonNegative(e.score) || !(e.error >= 0)) {
        return Corrupt("interest entry");
      }
      e.key = static_cast<uint32_t>(ref >> 1) | ((ref & 1) ? InterestTable::kMarkBit : 0);
    }
  }

  uint32_t session_count, closed_seconds, session_key;
  int64_t session_start;
  uint64_t session_length;
  if (!r.Varint32(&session_count) || !r.Varint32(&closed_seconds) || !r.Signed(&session_start) ||
      !PlausibleTime(session_start) || !r.Varint(&session_length) ||
      session_length > static_cast<uint64_t>(kTimeLimitMs) || !r.Fixed32(&session_key)) {
    return Corrupt("sessions");
  }
  q.sessions_.Restore(session_count, closed_seconds, session_start,
                      session_start + static_cast<int64_t>(session_length), session_key);

  std::array<uint16_t, 24> hours;
  std::array<uint16_t, 7> weekdays;
  for (uint16_t& h : hours) {
    uint32_t v;
    if (!r.Varint32(&v) || v > UINT16_MAX) return Corrupt("hour histogram");
    h = static_cast<uint16_t>(v);
  }
  for (uint16_t& d : weekdays) {
    uint32_t v;
    if (!r.Varint32(&v) || v > UINT16_MAX) return Corrupt("weekday histogram");
    d = static_cast<uint16_t>(v);
  }
  q.hours_.Restore(hours, weekdays);

  std::string_view days;
  if (!r.LengthPrefixed(&days)) return Corrupt("day buckets");
  if (absl::Status s = q.daily_.Restore(days); !s.ok()) return s;

  struct DecodedItem {
    int64_t ts_s;
    EventType type;
    uint32_t ref;
  };
  uint64_t sequence_size;
  if (!r.Varint(&sequence_size) || sequence_size > ItemSequence::kMaxLimit) {
    return Corrupt("sequence size");
  }
  std::vector<DecodedItem> items(sequence_size);
  int64_t ts = 0;
  if (sequence_size > 0 && (!r.Signed(&ts) || !PlausibleSeconds(ts))) {
    return Corrupt("sequence start");
  }
  for (DecodedItem& item : items) {
    uint64_t head, ref;
    if (!r.Varint(&head) || !r.Varint(&ref) || ref >= strings.size() ||
        (head & 15) >= static_cast<uint64_t>(kEventTypeCount) ||
        (head >> 4) > (uint64_t{1} << 40)) {
      return Corrupt("sequence entry");
    }
    ts += static_cast<int64_t>(head >> 4);
    if (!PlausibleSeconds(ts)) return Corrupt("sequence time");
    item = DecodedItem{ts, static_cast<EventType>(head & 15), static_cast<uint32_t>(ref)};
  }

  uint8_t has_extras;
  {
    std::string_view flag;
    if (!r.Bytes(1, &flag) || static_cast<uint8_t>(flag[0]) > 1) return Corrupt("extras flag");
    has_extras = static_cast<uint8_t>(flag[0]);
  }
  if (has_extras) {
    Profile::Extras& x = q.extras();
    std::string_view attributes;
    uint64_t rating_sum, slot;
    if (!r.LengthPrefixed(&attributes) || !r.Double(&x.refund_amount) ||
        !std::isfinite(x.refund_amount) || !r.Varint(&rating_sum) || !r.Varint32(&x.rating_count) ||
        !r.Varint(&slot) || slot >= Profile::kRecentOrders) {
      return Corrupt("extras");
    }
    for (uint32_t& key : x.recent_orders) {
      if (!r.Fixed32(&key)) return Corrupt("extras");
    }
    x.attributes_json.assign(attributes);
    x.rating_sum = rating_sum;
    x.next_order_slot = static_cast<uint8_t>(slot);
    if (version >= 2) {
      uint64_t n;
      if (!r.Double(&x.sentiment_sum) || !std::isfinite(x.sentiment_sum) ||
          !r.Varint32(&x.sentiment_count) || !r.Varint(&n) ||
          n > static_cast<uint64_t>(Profile::kSentimentCategories)) {
        return Corrupt("sentiment");
      }
      x.category_sentiment.resize(n);
      for (Profile::CategorySentiment& c : x.category_sentiment) {
        uint64_t ref;
        if (!r.Varint(&ref) || ref >= strings.size() || !r.Varint32(&c.count) || !r.Float(&c.sum) ||
            !std::isfinite(c.sum)) {
          return Corrupt("sentiment category");
        }
        c.category = static_cast<uint32_t>(ref);  // a string-table index until resolved below
      }
    }
  }
  if (version >= 2) {
    ActivityRhythm& rh = q.rhythm_;
    uint64_t v[6];
    int64_t segment;
    std::string_view flags;
    if (!r.Signed(&rh.last_event_ms) || !PlausibleTime(rh.last_event_ms) ||
        !r.Varint32(&rh.minute_start_s) || !r.Varint(&v[0]) || !r.Varint(&v[1]) ||
        !r.Varint(&v[2]) || !r.Varint(&v[3]) || !r.Varint32(&rh.gaps) || !r.Float(&rh.gap_mean_s) ||
        !r.Float(&rh.gap_m2) || !r.Signed(&segment) || !r.Bytes(1, &flags)) {
      return Corrupt("rhythm");
    }
    for (int i = 0; i < 4; ++i) {
      if (v[i] > UINT16_MAX) return Corrupt("rhythm");
    }
    if (segment < -1 || segment > INT16_MAX) return Corrupt("segment");
    rh.minute_events = static_cast<uint16_t>(v[0]);
    rh.max_minute_events = static_cast<uint16_t>(v[1]);
    rh.view_streak = static_cast<uint16_t>(v[2]);
    rh.max_view_streak = static_cast<uint16_t>(v[3]);
    q.segment_ = static_cast<int16_t>(segment);
    q.anomaly_flags_ = static_cast<uint8_t>(flags[0]);
  }
  if (r.remaining() != 0) return Corrupt("trailing bytes");

  // The blob is well-formed: intern its strings and resolve the references.
  std::vector<uint32_t> codes(strings.size());
  for (size_t i = 0; i < strings.size(); ++i) codes[i] = ctx.pool.Intern(strings[i]);
  const ProfileConfig& config = *ctx.config;
  const uint32_t capacities[kInterestKindCount] = {config.category_capacity, config.brand_capacity,
                                                   config.item_capacity, config.keyword_capacity};
  for (int k = 0; k < kInterestKindCount; ++k) {
    for (InterestTable::Entry& e : tables[k].entries) {
      e.key = codes[e.code()] | (e.key & InterestTable::kMarkBit);
    }
    q.interest_tables_[k].Restore(tables[k].total, tables[k].evictions, tables[k].entries,
                                  capacities[k]);
  }
  if (q.extras_) {
    for (Profile::CategorySentiment& c : q.extras_->category_sentiment)
      c.category = codes[c.category];
  }
  for (const DecodedItem& item : items) {
    q.sequence_.Add(item.ts_s * 1000, item.type, codes[item.ref], config.sequence_length);
  }
  *p = std::move(q);
  return absl::OkStatus();
}

}  // namespace persona
