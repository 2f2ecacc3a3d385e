// The shape of the synthetic stream: every number the generator draws from, with the measurement
// of the real slices in ../shared/datasets it came from. Change a number here, and the tests that
// compare the stream with these constants (and with the real taobao slice) follow.
//
// Measured on taobao/UserBehavior-by-user.csv (84,474 events, 815 users, 9 days),
// taobao/UserBehavior-by-time.csv (96,167 events, 58,732 users, 1.9 h) and
// rees46/2019-Oct-head.csv (17,433 events, 4,506 users, 3 h):
//   behaviour mix      taobao by-user pv 89.8%, cart 5.3%, fav 2.8%, buy 2.1% (by-time: 89.2/5.5/
//                      3.1/2.2); rees46 view 97.8%, cart 0.95%, purchase 1.23%.
//   events per user    taobao, 9 days: p10 19, p25 39, p50 78, p75 137, p90 226, p99 431, mean 104
//                      -> log-normal with sigma ~1.0 (ln(p90/p10) / 2.56 = 0.97).
//   sessions           taobao: 15.9% of a user's consecutive gaps exceed 30 min; gaps inside a
//                      session p10 10 s, p50 54 s, p90 337 s, mean 139 s (log-normal, sigma 1.43);
//                      between sessions p10 53 min, p50 5.9 h, p90 25 h; events per session p50 3,
//                      p90 15, p99 40, mean 6.0 (rees46: mean 3.4, p90 8).
//   same category      taobao: 47% of consecutive in-session events stay in the same category;
//                      24% of page views revisit an item the user has already seen.
//   purchase funnel    99% of rees46 purchases (and 61% of taobao's, whose window cuts histories)
//                      follow an earlier event of the same user on the same item.
//   category sizes     taobao category rank-frequency slope -0.90 (top 100, both slices); full
//                      dataset ~440 items per category (4.16M items / 9,439 categories).
//   item popularity    sampling Zipf(s) to the slices' sizes reproduces rees46's top-item count
//                      (205) and log-log slope (-0.65 over ranks 1..1000) at s = 0.75..0.8, and
//                      taobao's distinct-item count at s = 0.8 (its flatter head suggests 0.6).
//   hierarchy          rees46: 13 top-level categories, 56 second-level, 115 leaves; brands per
//                      category p50 2, p90 10, p99 23; 14% of events carry no brand.
//   prices             rees46, per category with >= 10 items: mean log-price p10 3.2, p50 4.54,
//                      p90 5.87 (-> N(4.54, 1.04)); log-price sigma within a category p10 0.34,
//                      p50 0.68, p90 1.01.
//   time of day        taobao share of events per hour, China time (UTC+8), 0h..23h (percent):
//                      3.5 1.6 0.8 0.4 0.5 0.7 1.6 2.6 3.3 4.0 4.5 4.6 4.0 5.1 5.0 5.5 5.4 4.6 4.9
//                      6.5 7.8 8.8 7.9 6.1.
//   review ratings     reviews/amazon_musical_instruments_5core.jsonl: 1* 2.1%, 2* 2.4%, 3* 7.5%,
//                      4* 20.3%, 5* 67.6%.
// Not measured (no data here): device shares, review/refund rates, bot and high-spender shapes.
#pragma once

#include <array>
#include <cstdint>

#include "common/time_util.h"
#include "event/event.h"

namespace persona::gen::shape {

struct TypeShare {
  EventType type;
  double share;
};

// What an ordinary user's next action is. Taobao's four behaviours keep their measured ratios
// (pv 89.8 : cart 5.3 : fav 2.8 : buy 2.1 once searches and removals are set aside); searches and
// cart removals, which taobao does not log, take 3.5%.
inline constexpr std::array<TypeShare, 6> kBrowserMix = {{
    {EventType::kView, 0.865},
    {EventType::kSearch, 0.030},
    {EventType::kCart, 0.052},
    {EventType::kRemoveCart, 0.005},
    {EventType::kFav, 0.0275},
    {EventType::kPurchase, 0.0205},
}};
// High spenders buy ~6x as often as everyone else (and premium items, see below).
inline constexpr std::array<TypeShare, 6> kHighSpenderMix = {{
    {EventType::kView, 0.700},
    {EventType::kSearch, 0.030},
    {EventType::kCart, 0.100},
    {EventType::kRemoveCart, 0.005},
    {EventType::kFav, 0.045},
    {EventType::kPurchase, 0.120},
}};
// Searches: P(the search starts a new interest rather than the session's), P(1, 2, 3 words),
// P(the query names a brand first).
inline constexpr double kSearchNewFocus = 0.5;
inline constexpr std::array<double, 3> kQueryWordsShare = {0.50, 0.35, 0.15};
inline constexpr double kQueryBrandShare = 0.15;
// A purchase takes the item in the cart (when there is one) rather than the one just viewed.
inline constexpr double kPurchaseFromCart = 0.6;
// Follow-ups of a purchase, emitted at the start of one of the user's later sessions.
inline constexpr double kReviewPerPurchase = 0.10;
inline constexpr double kRefundPerPurchase = 0.04;
// P(rating = 1..5) of a review.
inline constexpr std::array<double, 5> kRatingShare = {0.021, 0.024, 0.075, 0.203, 0.677};
// P(quantity = 1..3) of a purchase.
inline constexpr std::array<double, 3> kQuantityShare = {0.88, 0.09, 0.03};

// Sessions: a gap of more than kSessionGapMs ends one (the profile stage's default).
inline constexpr int64_t kSessionGapMs = 30 * kMinuteMs;
// Events per session = 1 + floor(LogNormal(ln 2, 1.4)): median 3, mean ~5.9, p90 ~14, p99 ~50.
inline constexpr double kSessionLengthLogMedian = 0.6931;  // ln 2
inline constexpr double kSessionLengthSigma = 1.4;
inline constexpr double kMeanSessionLength = 5.9;
// Gap between events of a session: LogNormal(median 54 s, sigma 1.43), kept under kSessionGapMs.
inline constexpr double kInSessionGapMedianMs = 54'000;
inline constexpr double kInSessionGapSigma = 1.43;
inline constexpr double kMeanInSessionGapMs = 150'000;  // 54 s * exp(1.43^2 / 2)
inline constexpr double kMinInSessionGapMs = 200;
// A user starts at most one session per this much time on average; heavier users get longer
// sessions instead of more of them (so 100M events over 100k users still fit the span).
inline constexpr int64_t kMinMeanSessionCycleMs = 2 * kHourMs;

// Per-user activity weight: LogNormal(-sigma^2/2, sigma), mean 1.
inline constexpr double kActivitySigma = 1.0;

// Inside a session: P(a page view revisits the current item), P(the next new item stays in the
// session's focus category rather than a freshly chosen one).
inline constexpr double kRevisitCurrentItem = 0.20;
inline constexpr double kKeepFocusCategory = 0.35;
// A user's favourite leaf categories and how often a fresh category choice lands on one of them
// (the rest follow global category popularity).
inline constexpr int kFavouriteLeaves = 3;
inline constexpr std::array<double, kFavouriteLeaves> kFavouriteShare = {0.35, 0.20, 0.15};

// Hierarchy: per top-level category 3..8 second-level ones, each with 2..10 leaves, scaled down
// when the catalog is small so that a leaf averages at least kMinItemsPerLeaf items.
inline constexpr int kMinMidPerTop = 3, kMaxMidPerTop = 8;
inline constexpr int kMinLeavesPerMid = 2, kMaxLeavesPerMid = 10;
inline constexpr int kMinItemsPerLeaf = 8;
inline constexpr double kLeafSizeZipf = 0.90;
// Brands: a pool per top-level category, 2..16 of them used by each leaf; items without a brand.
inline constexpr int kBrandsPerTop = 30;
inline constexpr int kMinBrandsPerLeaf = 2, kMaxBrandsPerLeaf = 16;
inline constexpr double kUnbrandedItemShare = 0.12;
// Search vocabulary: words per leaf.
inline constexpr int kMinWordsPerLeaf = 6, kMaxWordsPerLeaf = 10;
// Prices: per leaf, log-price mean ~ N(4.54, 1.04) (median $94) and sigma ~ U(0.34, 1.01).
inline constexpr double kLeafLogPriceMean = 4.54, kLeafLogPriceSpread = 1.04;
inline constexpr double kMinLeafLogPriceSigma = 0.34, kMaxLeafLogPriceSigma = 1.01;
// "Premium" = at or above the leaf's 80th price percentile (z = 0.8416).
inline constexpr double kPremiumZ = 0.8416;
inline constexpr double kHighSpenderPremiumShare = 0.85;

// Hourly activity, China time (taobao): session starts are thinned by these weights.
inline constexpr int64_t kLocalTimeOffsetMs = 8 * kHourMs;
inline constexpr std::array<double, 24> kHourWeight = {3.5, 1.6, 0.8, 0.4, 0.5, 0.7, 1.6, 2.6,
                                                       3.3, 4.0, 4.5, 4.6, 4.0, 5.1, 5.0, 5.5,
                                                       5.4, 4.6, 4.9, 6.5, 7.8, 8.8, 7.9, 6.1};

// Planted users.
inline constexpr double kShiftNoise = 0.10;     // share of a shifted user's picks off-target
inline constexpr double kShiftMinShare = 0.85;  // running on-target share the noise may not break
inline constexpr double kShiftEarliest = 0.30;  // T_u in [start + 0.3 span, start + 0.7 span]
inline constexpr double kShiftLatest = 0.70;
inline constexpr double kShiftMinActivity = 2.0;  // shifted users see enough events on both sides
inline constexpr double kHighSpenderMinActivity = 1.0;
inline constexpr double kBotActivity = 15.0;  // a bot does 15x the mean user's events
inline constexpr int64_t kMinBotPeriodMs = 1000, kMaxBotPeriodMs = 4000;
inline constexpr double kBotJitter = 0.03;  // +-3% around the bot's period
inline constexpr int64_t kMinBotBurst = 20, kMaxBotBurst = 2000;

// Device of a user (guessed shares: android, ios, desktop, mobile web).
inline constexpr std::array<double, 4> kDeviceShare = {0.45, 0.25, 0.20, 0.10};

// Late events: delayed by 1 s + Exp(60 s), at most 15 min.
inline constexpr double kMeanLateDelayMs = 60'000;
inline constexpr int64_t kMaxLateDelayMs = 15 * kMinuteMs;

}  // namespace persona::gen::shape
