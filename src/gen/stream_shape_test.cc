// The generated stream against what it was configured to be (gen/shape.h) and against the real
// slices it was measured on (../shared/datasets; those tests skip when the files are absent).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "gen/generator.h"
#include "gen/shape.h"

namespace persona::gen {
namespace {

// Ordinary users only: planted users have their own shapes (ground_truth_test.cc).
GenOptions BrowsersOnly() {
  GenOptions o;
  o.events = 200000;
  o.users = 15000;
  o.items = 20000;
  o.seed = 3;
  o.shift_fraction = o.high_spender_fraction = o.bot_fraction = 0;
  return o;
}

EventBatch Generate(const GenOptions& o) {
  EventGenerator gen(o);
  EventBatch batch;
  while (gen.Next(1 << 16, &batch)) {
  }
  return batch;
}

const EventBatch& BrowserStream() {
  static const EventBatch* stream = new EventBatch(Generate(BrowsersOnly()));
  return *stream;
}

double Share(const EventBatch& b, EventType t) {
  return static_cast<double>(std::count_if(b.events.begin(), b.events.end(),
                                           [t](const Event& e) { return e.type == t; })) /
         static_cast<double>(b.events.size());
}

// Least-squares slope of log(count) over log(rank) for ranks 1..n.
double LogLogSlope(const std::vector<double>& counts_by_rank, size_t n) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t r = 0; r < n; ++r) {
    const double x = std::log(r + 1.0), y = std::log(std::max(counts_by_rank[r], 0.5));
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

TEST(StreamShapeTest, BehaviourMixMatchesTheConfiguredMix) {
  const EventBatch& b = BrowserStream();
  ASSERT_EQ(b.events.size(), 200000u);
  for (const shape::TypeShare& s : shape::kBrowserMix) {
    const double got = Share(b, s.type);
    if (s.type == EventType::kRemoveCart) {
      // Drawn 0.5%, but only possible with something in the cart.
      EXPECT_GT(got, 0.2 * s.share);
      EXPECT_LE(got, s.share);
      continue;
    }
    EXPECT_NEAR(got, s.share, 0.08 * s.share) << EventTypeName(s.type);
  }
  // views >> carts > favs > purchases, as in taobao.
  EXPECT_GT(Share(b, EventType::kView), 10 * Share(b, EventType::kCart));
  EXPECT_GT(Share(b, EventType::kCart), Share(b, EventType::kFav));
  EXPECT_GT(Share(b, EventType::kFav), Share(b, EventType::kPurchase));
  // Follow-ups wait for a later session, so slightly fewer than drawn.
  const double purchases = Share(b, EventType::kPurchase);
  EXPECT_GT(Share(b, EventType::kReview) / purchases, 0.5 * shape::kReviewPerPurchase);
  EXPECT_LE(Share(b, EventType::kReview) / purchases, 1.1 * shape::kReviewPerPurchase);
  EXPECT_GT(Share(b, EventType::kRefund) / purchases, 0.4 * shape::kRefundPerPurchase);
  EXPECT_LE(Share(b, EventType::kRefund) / purchases, 1.2 * shape::kRefundPerPurchase);
}

TEST(StreamShapeTest, ItemPopularityFollowsTheConfiguredZipfExponent) {
  for (double exponent : {0.8, 1.1}) {
    GenOptions o = BrowsersOnly();
    o.item_zipf = exponent;
    EventGenerator gen(o);
    const SyntheticCatalog& catalog = gen.catalog();
    std::vector<uint32_t> index_of_number(catalog.item_count() + 1);
    for (uint32_t i = 0; i < catalog.item_count(); ++i) index_of_number[catalog.item_number(i)] = i;
    std::vector<double> by_rank(catalog.item_count(), 0);
    EventBatch batch;
    while (gen.Next(1 << 16, &batch)) {
      for (const Event& e : batch.events) {
        if (e.type != EventType::kView) continue;
        const uint32_t number = static_cast<uint32_t>(std::stoul(std::string(e.item_id)));
        by_rank[catalog.item_popularity_rank(index_of_number[number])] += 1;
      }
      batch = EventBatch{};
    }
    // Ranks 1..100 all have hundreds of views, so the fitted slope is tight.
    EXPECT_NEAR(LogLogSlope(by_rank, 100), -exponent, 0.1) << "configured " << exponent;
  }
}

TEST(StreamShapeTest, PurchasesFollowAViewOrCartOfTheSameItemBySameUser) {
  const EventBatch& b = BrowserStream();
  absl::flat_hash_set<std::pair<std::string_view, std::string_view>> touched;
  absl::flat_hash_map<std::pair<std::string_view, std::string_view>,
                      absl::flat_hash_set<std::string_view>>
      bought;  // (user, item) -> order ids
  int purchases = 0, follow_ups = 0;
  for (const Event& e : b.events) {
    const auto key = std::make_pair(e.user_id, e.item_id);
    switch (e.type) {
      case EventType::kView:
      case EventType::kCart:
        touched.insert(key);
        break;
      case EventType::kPurchase:
        ASSERT_TRUE(touched.contains(key)) << "purchase without a view/cart: " << e.event_id;
        bought[key].insert(e.order_id);
        ++purchases;
        break;
      case EventType::kReview:
      case EventType::kRefund:
        ASSERT_TRUE(bought.contains(key)) << "follow-up without a purchase: " << e.event_id;
        if (e.type == EventType::kRefund) {
          EXPECT_TRUE(bought[key].contains(e.order_id)) << "refund of an unknown order";
        }
        ++follow_ups;
        break;
      default:
        break;
    }
  }
  EXPECT_GT(purchases, 1000);
  EXPECT_GT(follow_ups, 100);
}

TEST(StreamShapeTest, SessionsAreSplitByGapsOfMoreThanThirtyMinutes) {
  const EventBatch& b = BrowserStream();
  struct Last {
    int64_t ts;
    std::string_view session;
  };
  absl::flat_hash_map<std::string_view, Last> last;
  int sessions = 0, continuing = 0;
  for (const Event& e : b.events) {
    auto it = last.find(e.user_id);
    if (it != last.end()) {
      const int64_t gap = e.ts_ms - it->second.ts;
      const bool new_session = e.session_id != it->second.session;
      ASSERT_EQ(new_session, gap > shape::kSessionGapMs)
          << "user " << e.user_id << " gap " << gap << " ms, session " << e.session_id;
      sessions += new_session;
      continuing += !new_session;
    }
    last[e.user_id] = Last{e.ts_ms, e.session_id};
  }
  EXPECT_GT(sessions, 1000);
  EXPECT_GT(continuing, 10 * sessions / 2);
}

TEST(StreamShapeTest, SearchQueriesUseTheVocabularyOfACategory) {
  GenOptions o = BrowsersOnly();
  o.events = 50000;
  EventGenerator gen(o);
  absl::flat_hash_set<std::string> vocabulary;
  for (uint32_t l = 0; l < gen.catalog().leaf_count(); ++l) {
    for (const std::string& w : gen.catalog().leaf(l).words) vocabulary.insert(w);
    for (uint32_t brand : gen.catalog().leaf(l).brands) {
      vocabulary.insert(std::string(gen.catalog().brand_name(brand)));
    }
  }
  EventBatch batch;
  while (gen.Next(1 << 16, &batch)) {
  }
  int searches = 0;
  for (const Event& e : batch.events) {
    if (e.type != EventType::kSearch) continue;
    ++searches;
    std::istringstream words{std::string(e.query)};
    for (std::string w; words >> w;) ASSERT_TRUE(vocabulary.contains(w)) << e.query;
  }
  EXPECT_GT(searches, 500);
}

// ---- Against the real slices ----

std::string Dataset(const char* relative) { return std::string(PERSONA_DATASETS) + "/" + relative; }

struct TaobaoRow {
  std::string user;
  std::string behaviour;
  int64_t seconds;
};

std::vector<TaobaoRow> ReadTaobao(std::istream& in) {
  std::vector<TaobaoRow> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cols.push_back(c);
    if (cols.size() != 5) continue;
    rows.push_back(TaobaoRow{cols[0], cols[3], std::stoll(cols[4])});
  }
  return rows;
}

struct TaobaoShape {
  std::map<std::string, double> mix;
  double events_per_session = 0;
  double median_in_session_gap_s = 0;
  std::vector<double> hour_share = std::vector<double>(24, 0);  // China time
};

TaobaoShape MeasureTaobao(std::vector<TaobaoRow> rows) {
  TaobaoShape s;
  for (const TaobaoRow& r : rows) {
    s.mix[r.behaviour] += 1.0 / rows.size();
    s.hour_share[((r.seconds + 8 * 3600) / 3600) % 24] += 1.0 / rows.size();
  }
  std::stable_sort(rows.begin(), rows.end(), [](const TaobaoRow& a, const TaobaoRow& b) {
    return a.user != b.user ? a.user < b.user : a.seconds < b.seconds;
  });
  std::vector<int64_t> in_session_gaps;
  int64_t sessions = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i == 0 || rows[i].user != rows[i - 1].user) {
      ++sessions;
      continue;
    }
    const int64_t gap = rows[i].seconds - rows[i - 1].seconds;
    if (gap > 1800) {
      ++sessions;
    } else {
      in_session_gaps.push_back(gap);
    }
  }
  s.events_per_session = static_cast<double>(rows.size()) / sessions;
  std::nth_element(in_session_gaps.begin(), in_session_gaps.begin() + in_session_gaps.size() / 2,
                   in_session_gaps.end());
  s.median_in_session_gap_s = in_session_gaps[in_session_gaps.size() / 2];
  return s;
}

TEST(StreamShapeTest, TaobaoFormatLooksLikeTheRealTaobaoSlice) {
  std::ifstream real_file(Dataset("taobao/UserBehavior-by-user.csv"));
  if (!real_file) GTEST_SKIP() << "dataset taobao/UserBehavior-by-user.csv not found";
  const TaobaoShape real = MeasureTaobao(ReadTaobao(real_file));

  GenOptions o = BrowsersOnly();
  o.format = GenOptions::Format::kTaobao;
  EventGenerator gen(o);
  std::string text;
  while (gen.WriteLines(1 << 16, &text) > 0) {
  }
  std::istringstream generated_text(text);
  const TaobaoShape ours = MeasureTaobao(ReadTaobao(generated_text));

  for (const char* b : {"pv", "cart", "fav", "buy"}) {
    EXPECT_NEAR(ours.mix.at(b), real.mix.at(b), 0.15 * real.mix.at(b)) << b;
  }
  EXPECT_NEAR(ours.events_per_session, real.events_per_session, 0.25 * real.events_per_session);
  EXPECT_NEAR(ours.median_in_session_gap_s, real.median_in_session_gap_s,
              0.4 * real.median_in_session_gap_s);
  // Time of day: the hourly profile correlates with taobao's (night trough, evening peak).
  double mx = 0, my = 0;
  for (int h = 0; h < 24; ++h) {
    mx += ours.hour_share[h] / 24;
    my += real.hour_share[h] / 24;
  }
  double sxy = 0, sxx = 0, syy = 0;
  for (int h = 0; h < 24; ++h) {
    sxy += (ours.hour_share[h] - mx) * (real.hour_share[h] - my);
    sxx += (ours.hour_share[h] - mx) * (ours.hour_share[h] - mx);
    syy += (real.hour_share[h] - my) * (real.hour_share[h] - my);
  }
  EXPECT_GT(sxy / std::sqrt(sxx * syy), 0.8);
}

TEST(StreamShapeTest, CatalogPricesSpreadLikeTheRealRees46Products) {
  std::ifstream real_file(Dataset("rees46/2019-Oct-head.csv"));
  if (!real_file) GTEST_SKIP() << "dataset rees46/2019-Oct-head.csv not found";
  // Each product once (its last price), grouped by category.
  absl::flat_hash_map<std::string, std::pair<std::string, double>> product;
  std::string line;
  std::getline(real_file, line);  // header
  while (std::getline(real_file, line)) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cols.push_back(c);
    if (cols.size() < 7 || !(std::stod(cols[6]) > 0)) continue;
    product[cols[2]] = {cols[3], std::stod(cols[6])};
  }
  ASSERT_GT(product.size(), 1000u);
  std::vector<double> real_prices;
  absl::flat_hash_map<std::string, std::vector<double>> real_log_by_category;
  for (const auto& [id, category_price] : product) {
    real_prices.push_back(category_price.second);
    real_log_by_category[category_price.first].push_back(std::log(category_price.second));
  }

  const SyntheticCatalog catalog(BrowsersOnly().items, 12, 0.8, 3);
  std::vector<double> ours;
  std::vector<std::vector<double>> our_log_by_leaf(catalog.leaf_count());
  for (uint32_t i = 0; i < catalog.item_count(); ++i) {
    ours.push_back(catalog.item_price_cents(i) / 100.0);
    our_log_by_leaf[catalog.item_leaf(i)].push_back(std::log(ours.back()));
  }
  std::sort(real_prices.begin(), real_prices.end());
  std::sort(ours.begin(), ours.end());
  for (double q : {0.1, 0.25, 0.5, 0.75, 0.9}) {
    const double r = real_prices[static_cast<size_t>(q * real_prices.size())];
    const double g = ours[static_cast<size_t>(q * ours.size())];
    EXPECT_GT(g, r / 2) << "quantile " << q;
    EXPECT_LT(g, r * 2) << "quantile " << q;
  }
  // Spread inside a category: median over categories (>= 10 products) of the log-price sigma.
  auto median_sigma = [](const auto& groups) {
    std::vector<double> sigmas;
    for (const auto& logs : groups) {
      if (logs.size() < 10) continue;
      double mean = 0, var = 0;
      for (double x : logs) mean += x / logs.size();
      for (double x : logs) var += (x - mean) * (x - mean) / logs.size();
      sigmas.push_back(std::sqrt(var));
    }
    std::sort(sigmas.begin(), sigmas.end());
    return sigmas.empty() ? 0.0 : sigmas[sigmas.size() / 2];
  };
  std::vector<std::vector<double>> real_groups;
  for (auto& [category, logs] : real_log_by_category) real_groups.push_back(std::move(logs));
  EXPECT_NEAR(median_sigma(our_log_by_leaf), median_sigma(real_groups), 0.15);
}

}  // namespace
}  // namespace persona::gen
