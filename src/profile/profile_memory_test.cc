// Memory bounds of a profile: whatever the number of events, and on average on real data.
#include <cstdio>
#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"
#include "profile/profile.h"
#include "profile/profile_context.h"
#include "profile/testing/profile_test_events.h"

namespace persona {
namespace {

using testing::OwnedEvent;

TEST(ProfileMemoryTest, MillionEventsForOneUserStayUnderFixedBound) {
  ProfileConfig config;
  Population population;
  ProfileContext ctx;
  ctx.config = &config;
  ctx.population = &population;
  Profile p;
  // Every feature busy: 5,000 items, 300 categories with 3-level paths, 100 brands, rotating
  // queries, sessions, orders, prices, refunds, reviews; one event every 7 seconds (~80 days),
  // and every 50th event 3 days late.
  std::vector<std::string> items, categories, brands, queries, sessions, orders;
  for (int i = 0; i < 5000; ++i) items.push_back("item" + std::to_string(i));
  for (int i = 0; i < 300; ++i) {
    categories.push_back("c" + std::to_string(i % 7) + ".s" + std::to_string(i % 31) + ".l" +
                         std::to_string(i));
  }
  for (int i = 0; i < 100; ++i) brands.push_back("brand" + std::to_string(i));
  for (int i = 0; i < 40; ++i) queries.push_back("red shoes size " + std::to_string(i));
  for (int i = 0; i < 1000; ++i) sessions.push_back("s" + std::to_string(i));
  for (int i = 0; i < 1000; ++i) orders.push_back("o" + std::to_string(i));
  Event e;
  e.user_id = "heavy";
  const int64_t start = 1577836800000LL;  // 2020-01-01
  size_t max_bytes = 0;
  for (int i = 0; i < 1000000; ++i) {
    e.type = static_cast<EventType>(i % kEventTypeCount);
    e.ts_ms = start + int64_t{i} * 7000 - (i % 50 == 0 ? 3 * kDayMs : 0);
    e.item_id = items[(int64_t{i} * 7919) % items.size()];
    e.category_path = categories[i % categories.size()];
    e.brand = brands[i % brands.size()];
    e.query = e.type == EventType::kSearch ? std::string_view(queries[i % queries.size()]) : "";
    e.session_id = sessions[(i / 40) % sessions.size()];
    e.order_id = e.type == EventType::kPurchase ? std::string_view(orders[(i / 3) % 1000]) : "";
    e.price = 10.0 + i % 90;
    e.quantity = 1;
    e.rating = e.type == EventType::kReview ? static_cast<int8_t>(1 + i % 5) : 0;
    p.Apply(e, ctx);
    if (i % 1000 == 0) max_bytes = std::max(max_bytes, p.MemoryBytes());
  }
  max_bytes = std::max(max_bytes, p.MemoryBytes());
  std::printf("one user, 1M events: %zu bytes now, %zu bytes at most\n", p.MemoryBytes(),
              max_bytes);
  // Bound from the capacities: 4 tables (24+16+16+16 entries of 16 B + header), 212 sequence
  // entries of <= 10 B, 30 day buckets of <= 70 B, the inline part, extras.
  EXPECT_LT(max_bytes, 8192u);
  EXPECT_EQ(p.sequence().size(), config.sequence_length);
  EXPECT_EQ(p.daily().bucket_count(), 30u);
}

TEST(ProfileMemoryTest, TaobaoAverageProfileIsUnderTwoKilobytes) {
  std::vector<OwnedEvent> events;
  if (!testing::ReadTaobao(testing::TaobaoByUserPath(), SIZE_MAX, &events)) {
    GTEST_SKIP() << "dataset not found: " << testing::TaobaoByUserPath();
  }
  ProfileConfig config;
  Population population;
  ProfileContext ctx;
  ctx.config = &config;
  ctx.population = &population;
  absl::flat_hash_map<std::string, Profile> profiles;
  for (const OwnedEvent& e : events) profiles[e.user].Apply(e.view(), ctx);
  size_t total = 0;
  size_t sequence = 0, tables = 0, days = 0;
  for (const auto& [user, p] : profiles) {
    total += p.MemoryBytes();
    sequence += p.sequence().HeapBytes();
    days += p.daily().HeapBytes();
    for (int k = 0; k < kInterestKindCount; ++k) {
      tables += p.interests(static_cast<InterestKind>(k)).HeapBytes();
    }
  }
  const double n = static_cast<double>(profiles.size());
  std::printf(
      "taobao: %zu users, %zu events, average profile %.0f bytes (inline %zu, sequence %.0f, "
      "interest tables %.0f, day buckets %.0f)\n",
      profiles.size(), events.size(), total / n, sizeof(Profile), sequence / n, tables / n,
      days / n);
  EXPECT_EQ(profiles.size(), 815u);
  EXPECT_LT(total / n, 2048.0);
}

}  // namespace
}  // namespace persona
