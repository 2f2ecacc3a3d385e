#include "gen/generator.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <span>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/hash.h"
#include "common/time_util.h"
#include "gen/event_text.h"
#include "gen/shape.h"

namespace persona {

using gen::CatalogLeaf;
using gen::PlannedUser;
using gen::SplitMix64;
using gen::SyntheticCatalog;
using gen::SyntheticPopulation;
using gen::UserRole;
namespace shape = gen::shape;

namespace {

constexpr uint32_t kNone = 0xffffffffu;
constexpr uint8_t kNoWord = 0xff;
constexpr uint8_t kNoAction = 0xff;
enum FollowUp : uint8_t { kNoFollowUp, kReviewFollowUp, kRefundFollowUp };

// Independent streams derived from the one seed: the catalog and the users do not change when
// only the event count or the format changes.
constexpr uint64_t kCatalogSalt = 0x636174616c6f6700ULL;  // "catalog"
constexpr uint64_t kStreamSalt = 0x73747265616d0000ULL;   // "stream"
constexpr uint64_t kLateSalt = 0x6c61746500000000ULL;     // "late"

constexpr double kPeakHourWeight = [] {
  double m = 0;
  for (double w : shape::kHourWeight) m = std::max(m, w);
  return m;
}();
constexpr double kMeanHourWeight = [] {
  double s = 0;
  for (double w : shape::kHourWeight) s += w;
  return s / 24;
}();
// Caps absurd waits (a user expected to act once in millennia) far inside int64 milliseconds.
constexpr double kFarFutureMs = 4e15;

// Review text: a phrase per rating (two each), around one word of the item category's vocabulary.
struct ReviewPhrase {
  std::string_view before, after;
};
constexpr ReviewPhrase kReviewPhrases[5][2] = {
    {{"terrible ", ", broke within a week"}, {"do not buy this ", ", waste of money"}},
    {{"disappointed with the ", ""}, {"the ", " feels cheap"}},
    {{"the ", " is okay for the price"}, {"average ", ", nothing special"}},
    {{"good ", ", does the job"}, {"nice ", ", fast delivery"}},
    {{"love this ", ", works perfectly"}, {"excellent ", ", would buy again"}},
};

GenOptions Clamped(GenOptions o) {
  o.users = std::clamp<uint64_t>(o.users, 1, 0xfffffff0u);
  o.top_categories = std::max<uint32_t>(o.top_categories, 2);
  o.items = std::clamp<uint64_t>(o.items, o.top_categories, 0xfffffff0u);
  o.start_ms = std::max(o.start_ms, kEpoch2000Ms);
  o.span_ms = std::max<int64_t>(o.span_ms, 1);
  auto fraction = [](double f) { return std::isfinite(f) ? std::clamp(f, 0.0, 1.0) : 0.0; };
  o.shift_fraction = fraction(o.shift_fraction);
  o.high_spender_fraction = fraction(o.high_spender_fraction);
  o.bot_fraction = fraction(o.bot_fraction);
  o.late_fraction = fraction(o.late_fraction);
  const double planted = o.shift_fraction + o.high_spender_fraction + o.bot_fraction;
  if (planted > 1) {
    o.shift_fraction /= planted;
    o.high_spender_fraction /= planted;
    o.bot_fraction /= planted;
  }
  if (!std::isfinite(o.item_zipf) || o.item_zipf < 0) o.item_zipf = GenOptions{}.item_zipf;
  return o;
}

uint32_t DrawIndex(gen::Rng& rng, std::span<const double> shares) {
  double u = rng.Uniform();
  for (size_t i = 0; i + 1 < shares.size(); ++i) {
    if (u < shares[i]) return static_cast<uint32_t>(i);
    u -= shares[i];
  }
  return static_cast<uint32_t>(shares.size() - 1);
}

EventType DrawType(gen::Rng& rng, std::span<const shape::TypeShare> mix) {
  double u = rng.Uniform();
  for (size_t i = 0; i + 1 < mix.size(); ++i) {
    if (u < mix[i].share) return mix[i].type;
    u -= mix[i].share;
  }
  return mix.back().type;
}

// Index in [0, n) skewed towards 0 (P(i) decreasing), for vocabularies and brands.
uint8_t SkewedIndex(gen::Rng& rng, size_t n) {
  const double u = rng.Uniform();
  return static_cast<uint8_t>(std::min<size_t>(static_cast<size_t>(u * u * n), n - 1));
}

// Writes v in decimal at p (at most 20 bytes) and returns the end. Unlike std::to_chars it needs no
// end pointer, so fixed-size line buffers are provably large enough.
char* PutDecimal(char* p, uint64_t v) {
  static constexpr char kPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  char digits[20];
  int n = 20;
  while (v >= 100) {  // two digits per division
    const uint64_t pair = v % 100;
    v /= 100;
    digits[--n] = kPairs[2 * pair + 1];
    digits[--n] = kPairs[2 * pair];
  }
  if (v >= 10) {
    digits[--n] = kPairs[2 * v + 1];
    digits[--n] = kPairs[2 * v];
  } else {
    digits[--n] = static_cast<char>('0' + v);
  }
  std::memcpy(p, digits + n, 20 - n);
  return p + (20 - n);
}

const char* TaobaoBehaviour(EventType t) {
  switch (t) {
    case EventType::kView:
      return "pv";
    case EventType::kCart:
      return "cart";
    case EventType::kFav:
      return "fav";
    case EventType::kPurchase:
      return "buy";
    default:
      return nullptr;
  }
}

}  // namespace

// A user's plan and the state that changes as the stream goes, side by side in two adjacent cache
// lines: each event reads both, and they arrive together.
struct alignas(64) EventGenerator::UserState {
  PlannedUser plan;
  uint32_t session = 0;           // sessions started so far (the current one's number)
  uint32_t session_left = 0;      // events still to come in the current session
  uint32_t focus_leaf = 0;        // the category the session is about
  uint32_t current_item = kNone;  // the item last viewed: carts, favs and purchases act on it
  uint32_t cart_item = kNone;
  uint32_t orders = 0;
  uint32_t followup_item = kNone;  // a purchase awaiting its review or refund
  uint32_t followup_order = 0;
  // Shifted users, current phase: category-bearing events on the phase's target leaf, and all.
  uint32_t on_target = 0;
  uint32_t category_events = 0;
  uint32_t delivered = 0;
  uint8_t followup = kNoFollowUp;
  uint8_t followup_quantity = 0;
  // An action drawn before the user had an item to apply it to; applied to the next event.
  uint8_t pending_action = kNoAction;
  bool after_shift = false;
  bool session_fresh = false;
};

// An event before rendering: indices only, so late events wait in a compact buffer.
struct EventGenerator::Draft {
  int64_t ts_ms = 0;
  uint64_t seq = 0;
  uint32_t user = 0;
  uint32_t item = kNone;
  uint32_t leaf = kNone;  // the item's leaf, or the searched leaf
  uint32_t session = 0;
  uint32_t order = 0;  // purchases and refunds
  EventType type = EventType::kView;
  uint8_t quantity = 0;
  int8_t rating = 0;
  uint8_t phrase = 0;
  uint8_t query_brand = kNoWord;  // position in the leaf's brand list
  uint8_t words[3] = {kNoWord, kNoWord, kNoWord};
};

struct EventGenerator::LateDraft {
  int64_t release_ms;
  Draft draft;
  // std::*_heap keep the greatest element on top: "greater" release time sorts first.
  bool operator<(const LateDraft& o) const {
    return release_ms > o.release_ms || (release_ms == o.release_ms && draft.seq > o.draft.seq);
  }
};

EventGenerator::EventGenerator(const GenOptions& options)
    : options_(Clamped(options)),
      catalog_(options_.items, options_.top_categories, options_.item_zipf,
               SplitMix64(options_.seed ^ kCatalogSalt)),
      population_(options_, catalog_),
      rng_(SplitMix64(options_.seed ^ kStreamSalt)),
      late_rng_(SplitMix64(options_.seed ^ kLateSalt)),
      in_session_gap_ms_([](double p) {
        return std::exp(std::log(shape::kInSessionGapMedianMs) +
                        shape::kInSessionGapSigma * gen::NormalQuantile(p));
      }),
      users_(population_.size()) {
  std::vector<int64_t> first_ts(users_.size());
  for (uint32_t u = 0; u < users_.size(); ++u) {
    const PlannedUser& p = users_[u].plan = population_.user(u);
    first_ts[u] = NextSessionStart(p, options_.start_ms, p.mean_cycle_ms);
    users_[u].focus_leaf = p.favourite_leaves[0];
  }
  schedule_ = gen::UserSchedule(first_ts);
  event_id_prefix_ = absl::StrFormat("%08x-", static_cast<uint32_t>(SplitMix64(options_.seed)));
}

EventGenerator::~EventGenerator() = default;

bool EventGenerator::NextDraft(Draft* d) {
  const bool taobao = options_.format == GenOptions::Format::kTaobao;
  while (delivered_ < options_.events) {
    if (!late_.empty() && late_.front().release_ms <= schedule_.top_ts_ms()) {
      std::pop_heap(late_.begin(), late_.end());
      *d = late_.back().draft;
      late_.pop_back();
    } else {
      Step(d);
      if (options_.late_fraction > 0 && late_rng_.Bernoulli(options_.late_fraction)) {
        const int64_t delay = std::min(
            kSecondMs + static_cast<int64_t>(late_rng_.Exponential(shape::kMeanLateDelayMs)),
            shape::kMaxLateDelayMs);
        late_.push_back(LateDraft{d->ts_ms + delay, *d});
        std::push_heap(late_.begin(), late_.end());
        continue;
      }
    }
    if (taobao && TaobaoBehaviour(d->type) == nullptr) continue;
    ++delivered_;
    ++users_[d->user].delivered;
    return true;
  }
  return false;
}

void EventGenerator::Step(Draft* d) {
  const uint32_t u = schedule_.top_user();
  const int64_t ts = schedule_.top_ts_ms();
  UserState& s = users_[u];
  const PlannedUser& p = s.plan;
  *d = Draft{};
  d->ts_ms = ts;
  d->seq = generated_++;
  d->user = u;

  if (p.role == UserRole::kShift && !s.after_shift && ts >= p.shift_at_ms) {
    // The interest moves on: what the user was looking at belonged to the old one.
    s.after_shift = true;
    s.current_item = s.cart_item = kNone;
    s.followup = kNoFollowUp;
    s.pending_action = kNoAction;
    s.on_target = s.category_events = 0;
    s.focus_leaf = p.shift_to_leaf;
  }
  if (s.session_left == 0) StartSession(p, s);
  d->session = s.session;

  if (p.role == UserRole::kBot) {
    d->item = catalog_.SampleUniformItem(rng_);  // crawlers do not follow popularity
  } else if (s.session_fresh && s.followup != kNoFollowUp) {
    // A shifted user may not review the old interest once that would break the planted share.
    if (p.role == UserRole::kShift && ShiftTight(s) &&
        catalog_.item_leaf(s.followup_item) != ShiftTarget(p, s)) {
      s.followup = kNoFollowUp;
      ChooseAction(p, s, d);
    } else {
      EmitFollowUp(s, d);
    }
  } else {
    ChooseAction(p, s, d);
  }

  if (d->item != kNone) {
    d->leaf = catalog_.item_leaf(d->item);
    if (p.role == UserRole::kShift) {
      ++s.category_events;
      if (d->leaf == ShiftTarget(p, s)) ++s.on_target;
    }
  }
  s.session_fresh = false;
  --s.session_left;
  const int64_t next =
      s.session_left > 0
          ? ts + InSessionGap(p)
          : NextSessionStart(p, ts + shape::kSessionGapMs + kSecondMs, p.mean_idle_ms);
  schedule_.RescheduleTop(next);
  // The next step reads this user's plan and state; fetch them while the caller renders.
  const char* next_user = reinterpret_cast<const char*>(&users_[schedule_.top_user()]);
  __builtin_prefetch(next_user);
  __builtin_prefetch(next_user + 64);
}

void EventGenerator::StartSession(const PlannedUser& p, UserState& s) {
  ++s.session;
  s.session_fresh = true;
  if (p.role == UserRole::kBot) {
    s.session_left =
        std::max<uint32_t>(1, static_cast<uint32_t>(p.bot_burst * (0.5 + rng_.Uniform())));
    return;
  }
  const double length =
      1 + std::floor(rng_.LogNormal(shape::kSessionLengthLogMedian, shape::kSessionLengthSigma) *
                     p.session_scale);
  s.session_left = static_cast<uint32_t>(std::min(length, 1e6));
  s.focus_leaf = p.role == UserRole::kShift ? ShiftTarget(p, s) : PickLeaf(p, s);
}

bool EventGenerator::ShiftTight(const UserState& s) {
  // One more off-target event would take the phase's on-target share below kShiftMinShare.
  return s.on_target < shape::kShiftMinShare * (s.category_events + 1);
}

uint32_t EventGenerator::ShiftTarget(const PlannedUser& p, const UserState& s) {
  return s.after_shift ? p.shift_to_leaf : p.shift_from_leaf;
}

void EventGenerator::ChooseAction(const PlannedUser& p, UserState& s, Draft* d) {
  if (p.role == UserRole::kShift && ShiftTight(s)) {
    const uint32_t target = ShiftTarget(p, s);
    if (s.current_item != kNone && catalog_.item_leaf(s.current_item) != target) {
      s.current_item = kNone;
    }
    if (s.cart_item != kNone && catalog_.item_leaf(s.cart_item) != target) s.cart_item = kNone;
    s.focus_leaf = target;
  }
  EventType type;
  if (s.pending_action != kNoAction) {
    type = static_cast<EventType>(s.pending_action);
    s.pending_action = kNoAction;
  } else {
    type = p.role == UserRole::kHighSpender ? DrawType(rng_, shape::kHighSpenderMix)
                                            : DrawType(rng_, shape::kBrowserMix);
  }
  switch (type) {
    case EventType::kSearch: {
      if (rng_.Bernoulli(shape::kSearchNewFocus)) s.focus_leaf = PickLeaf(p, s);
      d->type = EventType::kSearch;
      d->leaf = s.focus_leaf;
      const CatalogLeaf& leaf = catalog_.leaf(s.focus_leaf);
      const uint32_t words = 1 + DrawIndex(rng_, shape::kQueryWordsShare);
      for (uint32_t i = 0; i < words; ++i) {
        const uint8_t w = SkewedIndex(rng_, leaf.words.size());
        if (i > 0 && w == d->words[i - 1]) break;
        d->words[i] = w;
      }
      if (rng_.Bernoulli(shape::kQueryBrandShare)) {
        d->query_brand = SkewedIndex(rng_, leaf.brands.size());
      }
      break;
    }
    case EventType::kCart:
    case EventType::kFav:
      if (s.current_item == kNone) {
        ViewNewItem(p, s, d);
        s.pending_action = static_cast<uint8_t>(type);
        break;
      }
      d->type = type;
      d->item = s.current_item;
      if (type == EventType::kCart) {
        s.cart_item = s.current_item;
        d->quantity = 1;
      }
      break;
    case EventType::kRemoveCart:
      if (s.cart_item == kNone) {
        ViewItem(p, s, d);
        break;
      }
      d->type = type;
      d->item = s.cart_item;
      s.cart_item = kNone;
      break;
    case EventType::kPurchase: {
      if (s.current_item == kNone && s.cart_item == kNone) {
        ViewNewItem(p, s, d);
        s.pending_action = static_cast<uint8_t>(type);
        break;
      }
      // Either the cart's item or the one just viewed: both were viewed by this user before.
      const bool from_cart = s.cart_item != kNone &&
                             (s.current_item == kNone || rng_.Bernoulli(shape::kPurchaseFromCart));
      d->type = EventType::kPurchase;
      d->item = from_cart ? s.cart_item : s.current_item;
      if (from_cart) s.cart_item = kNone;
      d->order = ++s.orders;
      d->quantity = static_cast<uint8_t>(1 + DrawIndex(rng_, shape::kQuantityShare));
      if (s.followup == kNoFollowUp) {
        const double r = rng_.Uniform();
        if (r < shape::kReviewPerPurchase + shape::kRefundPerPurchase) {
          s.followup = r < shape::kReviewPerPurchase ? kReviewFollowUp : kRefundFollowUp;
          s.followup_item = d->item;
          s.followup_order = d->order;
          s.followup_quantity = d->quantity;
        }
      }
      break;
    }
    default:
      ViewItem(p, s, d);
      break;
  }
}

void EventGenerator::EmitFollowUp(UserState& s, Draft* d) {
  d->item = s.followup_item;
  if (s.followup == kReviewFollowUp) {
    d->type = EventType::kReview;
    d->rating = static_cast<int8_t>(1 + DrawIndex(rng_, shape::kRatingShare));
    d->phrase = static_cast<uint8_t>(rng_.Below(2));
    const CatalogLeaf& leaf = catalog_.leaf(catalog_.item_leaf(d->item));
    d->words[0] = SkewedIndex(rng_, leaf.words.size());
  } else {
    d->type = EventType::kRefund;
    d->order = s.followup_order;
    d->quantity = s.followup_quantity;
  }
  s.followup = kNoFollowUp;
}

void EventGenerator::ViewItem(const PlannedUser& p, UserState& s, Draft* d) {
  if (s.current_item != kNone && rng_.Bernoulli(shape::kRevisitCurrentItem)) {
    d->type = EventType::kView;
    d->item = s.current_item;
    return;
  }
  ViewNewItem(p, s, d);
}

void EventGenerator::ViewNewItem(const PlannedUser& p, UserState& s, Draft* d) {
  if (!rng_.Bernoulli(shape::kKeepFocusCategory)) s.focus_leaf = PickLeaf(p, s);
  d->type = EventType::kView;
  d->item = PickItem(p, s.focus_leaf);
  s.current_item = d->item;
}

uint32_t EventGenerator::PickLeaf(const PlannedUser& p, const UserState& s) {
  if (p.role == UserRole::kShift) {
    const uint32_t target = ShiftTarget(p, s);
    if (ShiftTight(s) || !rng_.Bernoulli(shape::kShiftNoise)) return target;
    return catalog_.SampleLeaf(rng_);
  }
  double r = rng_.Uniform();
  for (int i = 0; i < shape::kFavouriteLeaves; ++i) {
    if (r < shape::kFavouriteShare[i]) return p.favourite_leaves[i];
    r -= shape::kFavouriteShare[i];
  }
  return catalog_.SampleLeaf(rng_);
}

uint32_t EventGenerator::PickItem(const PlannedUser& p, uint32_t leaf) {
  uint32_t item = catalog_.SampleItemInLeaf(leaf, rng_);
  if (p.role == UserRole::kHighSpender && rng_.Bernoulli(shape::kHighSpenderPremiumShare)) {
    // Rejection keeps popularity order among premium items; ~20% of picks qualify per try.
    const uint32_t premium = catalog_.leaf(leaf).premium_cents;
    for (int tries = 0; tries < 16 && catalog_.item_price_cents(item) < premium; ++tries) {
      item = catalog_.SampleItemInLeaf(leaf, rng_);
    }
  }
  return item;
}

int64_t EventGenerator::InSessionGap(const PlannedUser& p) {
  if (p.role == UserRole::kBot) {
    const double jitter = shape::kBotJitter * (2 * rng_.Uniform() - 1);
    return std::max<int64_t>(1, std::llround(p.bot_period_ms * (1 + jitter)));
  }
  // Drawn for nearly every event: a quantile table instead of exp(normal).
  const double gap = in_session_gap_ms_.Sample(rng_) / p.session_scale;
  return static_cast<int64_t>(std::clamp(gap, shape::kMinInSessionGapMs,
                                         static_cast<double>(shape::kSessionGapMs - kSecondMs)));
}

int64_t EventGenerator::NextSessionStart(const PlannedUser& p, int64_t from_ms,
                                         double mean_wait_ms) {
  double t = static_cast<double>(from_ms);
  if (p.role == UserRole::kBot) {
    t += rng_.Exponential(mean_wait_ms);  // machines keep no hours
  } else {
    // Thinning (Lewis & Shedler): candidates at the peak hour's rate, each kept with probability
    // weight(hour) / peak, form a Poisson process that follows the day with mean wait
    // mean_wait_ms.
    const double candidate_mean = mean_wait_ms * kMeanHourWeight / kPeakHourWeight;
    for (int i = 0; i < 10000 && t < kFarFutureMs; ++i) {
      t += rng_.Exponential(candidate_mean);
      const int64_t hour =
          FloorDiv(static_cast<int64_t>(t) + shape::kLocalTimeOffsetMs, kHourMs) % 24;
      if (rng_.Uniform() * kPeakHourWeight < shape::kHourWeight[hour]) break;
    }
  }
  return static_cast<int64_t>(std::min(t, kFarFutureMs));
}

Event EventGenerator::MakeEvent(const Draft& d) {
  // Every string put here is bounded (ids are numbers, words and brands a few letters, phrases
  // fixed), far below sizeof scratch_.
  char* p = scratch_;
  auto put = [&](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  auto put_number = [&](uint64_t v) { p = PutDecimal(p, v); };
  auto view_from = [&](const char* begin) {
    return std::string_view(begin, static_cast<size_t>(p - begin));
  };
  const uint64_t user_number = SyntheticPopulation::UserNumber(d.user);

  Event e;
  e.type = d.type;
  e.ts_ms = d.ts_ms;
  char* begin = p;
  put(event_id_prefix_);
  put_number(d.seq);
  e.event_id = view_from(begin);
  begin = p;
  put_number(user_number);
  e.user_id = view_from(begin);
  begin = p;
  put(e.user_id);
  put("-");
  put_number(d.session);
  e.session_id = view_from(begin);
  e.device = gen::kDeviceNames[users_[d.user].plan.device];

  if (d.item != kNone) {
    begin = p;
    put_number(catalog_.item_number(d.item));
    e.item_id = view_from(begin);
    e.category_path = catalog_.leaf(d.leaf).path;
    const uint32_t brand = catalog_.item_brand(d.item);
    if (brand != SyntheticCatalog::kNoBrand) e.brand = catalog_.brand_name(brand);
    e.price = catalog_.item_price_cents(d.item) / 100.0;
  }
  e.quantity = d.quantity;
  if (d.order != 0) {
    begin = p;
    put("o");
    put(e.user_id);
    put("-");
    put_number(d.order);
    e.order_id = view_from(begin);
  }
  if (d.type == EventType::kSearch) {
    const CatalogLeaf& leaf = catalog_.leaf(d.leaf);
    begin = p;
    if (d.query_brand != kNoWord) {
      put(catalog_.brand_name(leaf.brands[d.query_brand]));
      put(" ");
    }
    for (uint8_t w : d.words) {
      if (w == kNoWord) break;
      if (p != begin && p[-1] != ' ') put(" ");
      put(leaf.words[w]);
    }
    e.query = view_from(begin);
  } else if (d.type == EventType::kReview) {
    const ReviewPhrase& phrase = kReviewPhrases[d.rating - 1][d.phrase];
    e.rating = d.rating;
    begin = p;
    put(phrase.before);
    put(catalog_.leaf(d.leaf).words[d.words[0]]);
    put(phrase.after);
    e.text = view_from(begin);
  }
  return e;
}

void EventGenerator::AppendTaobaoLine(const Draft& d, std::string* out) const {
  // One bounded local buffer and a single append: this is the >= 3M events/s path.
  char line[96];
  char* p = line;
  p = PutDecimal(p, SyntheticPopulation::UserNumber(d.user));
  *p++ = ',';
  p = PutDecimal(p, catalog_.item_number(d.item));
  *p++ = ',';
  // A leaf number has at most 10 digits; the bound lets the compiler prove the buffer suffices.
  const std::string& category = catalog_.leaf(d.leaf).number;
  const size_t category_size = std::min<size_t>(category.size(), 10);
  std::memcpy(p, category.data(), category_size);
  p += category_size;
  *p++ = ',';
  const char* behaviour = TaobaoBehaviour(d.type);
  const size_t behaviour_size = std::strlen(behaviour);
  std::memcpy(p, behaviour, behaviour_size);
  p += behaviour_size;
  *p++ = ',';
  p = PutDecimal(p, static_cast<uint64_t>(FloorDiv(d.ts_ms, kSecondMs)));  // ts >= 2000
  *p++ = '\n';
  out->append(line, p);
}

bool EventGenerator::Next(size_t n, EventBatch* batch) {
  const uint64_t remaining = options_.events - delivered_;
  batch->events.reserve(batch->events.size() + std::min<uint64_t>(n, remaining));
  batch->source_index.reserve(batch->source_index.size() + std::min<uint64_t>(n, remaining));
  StringArena& arena = batch->arena;
  size_t added = 0;
  Draft d;
  while (added < n && NextDraft(&d)) {
    Event e = MakeEvent(d);
    for (std::string_view* field : {&e.event_id, &e.user_id, &e.item_id, &e.category_path, &e.brand,
                                    &e.order_id, &e.query, &e.text, &e.session_id, &e.device}) {
      *field = arena.Copy(*field);
    }
    e.id_hash = Hash64(e.event_id);  // what the parsers set for an event with an event_id
    batch->events.push_back(e);
    batch->source_index.push_back(static_cast<uint32_t>(delivered_ - 1));
    ++added;
  }
  return added > 0;
}

uint64_t EventGenerator::WriteLines(size_t n, std::string* out) {
  if (options_.format == GenOptions::Format::kCsv && !header_written_) {
    out->append(gen::CsvHeader());
    header_written_ = true;
  }
  uint64_t written = 0;
  Draft d;
  while (written < n && NextDraft(&d)) {
    switch (options_.format) {
      case GenOptions::Format::kTaobao:
        AppendTaobaoLine(d, out);
        break;
      case GenOptions::Format::kJsonl:
        gen::AppendJsonLine(MakeEvent(d), out);
        break;
      case GenOptions::Format::kCsv:
        gen::AppendCsvLine(MakeEvent(d), out);
        break;
    }
    ++written;
  }
  return written;
}

void EventGenerator::WriteGroundTruth(std::string* out) const {
  for (uint32_t u = 0; u < users_.size(); ++u) {
    if (users_[u].delivered > 0) population_.AppendGroundTruth(u, catalog_, out);
  }
}

size_t EventGenerator::MemoryBytes() const {
  return catalog_.MemoryBytes() + population_.MemoryBytes() +
         users_.capacity() * sizeof(UserState) + schedule_.MemoryBytes() +
         late_.capacity() * sizeof(LateDraft) + event_id_prefix_.capacity();
}

namespace {

// Closes a FILE* it owns (never stdout).
struct FileCloser {
  void operator()(FILE* f) const {
    if (f != nullptr && f != stdout) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

absl::StatusOr<FilePtr> OpenForWrite(const std::string& path) {
  if (path == "-") return FilePtr(stdout);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  return FilePtr(f);
}

absl::Status WriteAll(FILE* f, std::string_view bytes, const std::string& path) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
}

// Flushes and, for a real file, closes: a full disk often shows only here.
absl::Status Finish(FilePtr file, const std::string& path) {
  FILE* f = file.release();
  const bool ok = std::fflush(f) == 0 && (f == stdout || std::fclose(f) == 0);
  if (ok) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
}

}  // namespace

absl::Status RunGen(const GenOptions& options, const std::string& out_path,
                    const std::string& truth_path, bool progress) {
  if (absl::Status s = ValidateGenOptions(options); !s.ok()) return s;
  // Open both files before generating anything: a bad truth path should not cost a 100M run.
  absl::StatusOr<FilePtr> out = OpenForWrite(out_path);
  if (!out.ok()) return out.status();
  FilePtr truth;
  if (!truth_path.empty()) {
    absl::StatusOr<FilePtr> t = OpenForWrite(truth_path);
    if (!t.ok()) return t.status();
    truth = std::move(*t);
  }

  EventGenerator gen(options);
  constexpr size_t kChunkEvents = 16384;
  std::string buffer;
  buffer.reserve(kChunkEvents * 320);
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_report = start;
  auto report = [&](Clock::time_point now) {
    const double seconds = std::chrono::duration<double>(now - start).count();
    std::fprintf(stderr, "gen: %llu/%llu events, %.2fM events/s\n",
                 static_cast<unsigned long long>(gen.delivered()),
                 static_cast<unsigned long long>(options.events),
                 seconds > 0 ? gen.delivered() / seconds / 1e6 : 0.0);
  };
  for (;;) {
    buffer.clear();
    const uint64_t written = gen.WriteLines(kChunkEvents, &buffer);
    if (absl::Status s = WriteAll(out->get(), buffer, out_path); !s.ok()) return s;
    if (written == 0) break;
    if (progress) {
      const Clock::time_point now = Clock::now();
      if (now - last_report >= std::chrono::seconds(1)) {
        report(now);
        last_report = now;
      }
    }
  }
  if (absl::Status s = Finish(std::move(*out), out_path); !s.ok()) return s;
  if (progress) report(Clock::now());

  if (truth) {
    std::string records;
    gen.WriteGroundTruth(&records);
    if (absl::Status s = WriteAll(truth.get(), records, truth_path); !s.ok()) return s;
    if (absl::Status s = Finish(std::move(truth), truth_path); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace persona
