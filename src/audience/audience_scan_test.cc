// Ad-hoc scans against a real engine: counts and ids equal a brute-force evaluation, pages
// concatenate to exactly the full member list (also while users are added between pages), the
// sample is a uniform subset, exports parse back, and reports add up.
#include "audience/audience_scan.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/time_util.h"
#include "engine/engine.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "store/scoped_temp_dir.h"

namespace persona {
namespace {

constexpr int64_t kEnd = 1700000000000;

using Key = std::pair<uint64_t, std::string>;
Key KeyOf(const std::string& id) { return {Hash64(id), id}; }

AudienceCondition MustCompile(std::string_view text) {
  absl::StatusOr<AudienceCondition> c = AudienceCondition::Compile(text);
  EXPECT_TRUE(c.ok()) << text << ": " << c.status();
  return *std::move(c);
}

// Splits RFC 4180 text into records of cells.
std::vector<std::vector<std::string>> ParseCsv(std::string_view text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell.push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(cell));
      cell.clear();
    } else if (c == '\n') {
      row.push_back(std::move(cell));
      cell.clear();
      rows.push_back(std::move(row));
      row.clear();
    } else {
      cell.push_back(c);
    }
  }
  EXPECT_TRUE(row.empty() && cell.empty()) << "unterminated last line";
  return rows;
}

class AudienceScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineConfig c;
    c.data_dir = dir_.path();
    c.partitions = 2;
    c.sync = SyncPolicy::kNone;
    c.checkpoint_interval_ms = 0;
    c.checkpoint_every_events = 0;
    absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Open(c);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    AddUsers(0, 300, 1);
  }
  void TearDown() override {
    if (engine_) {
      EXPECT_TRUE(engine_->Close().ok());
    }
  }

  // Users u<first>..u<first+n-1>, each with 1-6 events: views, carts, searches and priced
  // purchases over four top categories, spread over 60 days; every third has a city.
  void AddUsers(int first, int n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto batch = std::make_shared<EventBatch>();
    for (int u = first; u < first + n; ++u) {
      const std::string user = "u" + std::to_string(u);
      const int events = 1 + static_cast<int>(rng() % 6);
      for (int i = 0; i < events; ++i) {
        Event e;
        e.user_id = batch->arena.Copy(user);
        const uint64_t r = rng() % 10;
        e.type = r < 5   ? EventType::kView
                 : r < 7 ? EventType::kCart
                 : r < 9 ? EventType::kPurchase
                         : EventType::kSearch;
        e.ts_ms = kEnd - static_cast<int64_t>(rng() % (60 * kDayMs));
        const std::string category =
            "c" + std::to_string(1 + rng() % 4) + ".s" + std::to_string(1 + rng() % 3);
        if (e.type == EventType::kSearch) {
          e.query = batch->arena.Copy("red shoes");
        } else {
          e.item_id = batch->arena.Copy("i" + std::to_string(rng() % 50));
          e.category_path = batch->arena.Copy(category);
          e.price = 5 + static_cast<double>(rng() % 400);
          e.quantity = 1;
        }
        if (e.type == EventType::kPurchase) {
          e.order_id = batch->arena.Copy("o" + user + "_" + std::to_string(i));
        }
        e.event_id = batch->arena.Copy(user + "#" + std::to_string(i) + "#" + std::to_string(seed));
        e.id_hash = Hash64(e.event_id);
        batch->events.push_back(e);
        batch->source_index.push_back(static_cast<uint32_t>(batch->events.size() - 1));
      }
    }
    IngestOutcome o = engine_->Ingest(batch);
    ASSERT_EQ(o.accepted, batch->events.size());
    for (int u = first; u < first + n; u += 3) {
      std::string json = "{\"city\":\"" + std::string(u % 2 ? "Lyon" : "Saint-Denis, \\\"93\\\"") +
                         "\",\"age\":" + std::to_string(20 + u % 50) + "}";
      ASSERT_TRUE(engine_->SetAttributes("u" + std::to_string(u), json, false).ok());
    }
  }

  // The members of `c` by brute force, in the stable order.
  std::vector<std::string> Members(const AudienceCondition& c) const {
    const AudienceEnv env{nullptr, engine_->tag_rules()};
    const int64_t now = engine_->NowMs();
    std::vector<Key> keys;
    engine_->ForEachProfile([&](std::string_view id, const Profile& p, const ProfileContext& ctx) {
      if (c.Matches(p, ctx, now, env)) keys.push_back(KeyOf(std::string(id)));
    });
    std::sort(keys.begin(), keys.end());
    std::vector<std::string> ids;
    for (auto& k : keys) ids.push_back(k.second);
    return ids;
  }

  ScopedTempDir dir_{"audience_scan"};
  std::unique_ptr<Engine> engine_;
};

TEST_F(AudienceScanTest, CountAndIdsEqualBruteForceOnOneAndTwoThreads) {
  AudienceScanner scanner(engine_.get(), nullptr);
  for (std::string_view text :
       {"purchases >= 1 and monetary > 100", "interest.category(\"c2\") > 0.3",
        "lifecycle = \"dormant\" or views_7d >= 1", "attribute(\"city\") = \"Lyon\"",
        "not buyer and carts > 0", "views > 1000"}) {
    const AudienceCondition c = MustCompile(text);
    const std::vector<std::string> expected = Members(c);
    for (uint32_t threads : {1u, 2u}) {
      AudienceQueryOptions options;
      options.page_size = 1000;
      options.threads = threads;
      absl::StatusOr<AudienceQueryResult> r = scanner.Query({&c}, options);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->count, expected.size()) << text;
      EXPECT_EQ(r->scanned, 300u);
      EXPECT_EQ(r->ids, expected) << text;
      EXPECT_EQ(r->next_cursor, "");
      EXPECT_EQ(r->as_of_ms, engine_->NowMs());
    }
  }
  // The interesting conditions select a real part of the population, not none or all.
  const size_t buyers = Members(MustCompile("purchases >= 1 and monetary > 100")).size();
  EXPECT_GT(buyers, 30u);
  EXPECT_LT(buyers, 270u);
}

TEST_F(AudienceScanTest, PagesConcatenateToTheMemberListEvenWhileUsersArrive) {
  AudienceScanner scanner(engine_.get(), nullptr);
  const AudienceCondition c = MustCompile("carts >= 1 or purchases >= 1");
  const std::vector<std::string> before = Members(c);
  ASSERT_GT(before.size(), 50u);

  AudienceQueryOptions options;
  options.page_size = 7;
  options.sample = 0;
  std::vector<std::string> concatenated;
  int pages = 0;
  do {
    absl::StatusOr<AudienceQueryResult> r = scanner.Query({&c}, options);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_LE(r->ids.size(), 7u);
    concatenated.insert(concatenated.end(), r->ids.begin(), r->ids.end());
    options.cursor = r->next_cursor;
    // Printable and URL-safe, whatever the user ids contain.
    for (char ch : r->next_cursor) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)));
    if (++pages == 3) AddUsers(1000, 100, 2);  // new users land before and after the cursor
  } while (!options.cursor.empty() && pages < 1000);

  std::vector<Key> keys;
  for (const std::string& id : concatenated) keys.push_back(KeyOf(id));
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end()) << "duplicate id";
  // Every member from before the additions appears, and every id listed is a member now.
  const std::vector<std::string> after = Members(c);
  const std::set<std::string> listed(concatenated.begin(), concatenated.end());
  for (const std::string& id : before) EXPECT_TRUE(listed.count(id)) << id;
  const std::set<std::string> members(after.begin(), after.end());
  for (const std::string& id : concatenated) EXPECT_TRUE(members.count(id)) << id;
  // Exactly the members after the cursor position at the time each page was read: new users
  // whose key sorts after the third page's cursor were picked up.
  EXPECT_GT(concatenated.size(), before.size());
  EXPECT_LT(concatenated.size(), after.size());
}

TEST_F(AudienceScanTest, SampleIsAUniformSubsetWithFields) {
  AudienceScanner scanner(engine_.get(), nullptr);
  const AudienceCondition c = MustCompile("attribute(\"city\") != \"\"");
  const std::vector<std::string> members = Members(c);
  ASSERT_EQ(members.size(), 100u);  // every third of 300 users

  AudienceQueryOptions options;
  options.sample = 500;  // more than there are: all of them
  options.page_size = 0;
  options.fields = {"attribute(\"city\")", "monetary", "buyer"};
  absl::StatusOr<AudienceQueryResult> all = scanner.Query({&c}, options);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->sample.size(), 100u);
  EXPECT_TRUE(all->ids.empty());
  std::set<std::string> sampled;
  for (const AudienceRow& row : all->sample) {
    sampled.insert(row.user_id);
    ASSERT_EQ(row.values.size(), 3u);
    const std::string* city = std::get_if<std::string>(&row.values[0]);
    ASSERT_NE(city, nullptr);
    EXPECT_TRUE(*city == "Lyon" || *city == "Saint-Denis, \"93\"") << *city;
  }
  EXPECT_EQ(sampled, std::set<std::string>(members.begin(), members.end()));

  // Each member's chance to be among k of n is k / n: over many seeds, counts stay near the
  // expectation (binomial sd ~ 8.9 for 400 draws at p = 0.25); a merge that favoured one
  // thread's members would put half of them near 0 or 200.
  options.sample = 25;
  options.fields.clear();
  options.threads = 2;
  std::map<std::string, int> hits;
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    options.seed = seed;
    absl::StatusOr<AudienceQueryResult> r = scanner.Query({&c}, options);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->sample.size(), 25u);
    std::set<std::string> distinct;
    for (const AudienceRow& row : r->sample) {
      distinct.insert(row.user_id);
      ++hits[row.user_id];
    }
    EXPECT_EQ(distinct.size(), 25u);
  }
  EXPECT_EQ(hits.size(), 100u);
  for (const auto& [id, n] : hits) {
    EXPECT_GT(n, 55) << id;
    EXPECT_LT(n, 145) << id;
  }
  // A seed gives the same sample whatever the thread count (and so whichever thread saw whom).
  auto ids = [](const AudienceQueryResult& r) {
    std::vector<std::string> out;
    for (const AudienceRow& row : r.sample) out.push_back(row.user_id);
    return out;
  };
  options.seed = 77;
  const std::vector<std::string> two_threads = ids(*scanner.Query({&c}, options));
  options.threads = 1;
  EXPECT_EQ(ids(*scanner.Query({&c}, options)), two_threads);
  options.seed = 78;
  EXPECT_NE(ids(*scanner.Query({&c}, options)), two_threads);
}

TEST_F(AudienceScanTest, SavedBitSelectsByMembership) {
  const AudienceCondition c = MustCompile("purchases >= 1");
  const AudienceEnv env{nullptr, engine_->tag_rules()};
  const int64_t now = engine_->NowMs();
  engine_->ScanProfiles(1, [&](uint32_t, const ProfileScanItem& item) {
    item.membership = c.Matches(item.profile, item.ctx, now, env) ? uint64_t{1} << 5 : 0;
  });
  AudienceScanner scanner(engine_.get(), nullptr);
  AudienceQueryOptions options;
  options.page_size = 1000;
  absl::StatusOr<AudienceQueryResult> r = scanner.Query({.saved_bit = 5}, options);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ids, Members(c));
  EXPECT_EQ(scanner.Query({.saved_bit = 6}, options)->count, 0u);
  engine_->ScanProfiles(1, [&](uint32_t, const ProfileScanItem& item) { item.membership = 0; });
}

TEST_F(AudienceScanTest, BadRequestsAreInvalidArgument) {
  AudienceScanner scanner(engine_.get(), nullptr);
  const AudienceCondition c = MustCompile("buyer");
  AudienceQueryOptions options;
  options.cursor = "zz";
  EXPECT_EQ(scanner.Query({&c}, options).status().message(), "invalid cursor");
  options.cursor = "";
  options.fields = {"monetary", "monetery"};
  absl::StatusOr<AudienceQueryResult> r = scanner.Query({&c}, options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "unknown field 'monetery' (did you mean 'monetary'?)");
  options.fields.clear();
  options.page_size = AudienceScanner::kMaxPageSize + 1;
  EXPECT_FALSE(scanner.Query({&c}, options).ok());
  EXPECT_FALSE(scanner.Query({}, AudienceQueryOptions()).ok());
  std::string next;
  const std::vector<std::string> fields = {"attribute(city)"};
  EXPECT_EQ(scanner.Export({&c}, fields, "csv", 0, "", &next).status().message(),
            "unknown field 'attribute(city)'");
  EXPECT_EQ(scanner.Export({&c}, {}, "xml", 0, "", &next).status().message(),
            "unknown format 'xml' (expected csv or ndjson)");
}

TEST_F(AudienceScanTest, CsvExportParsesBackWithQuotingAndEmptyNaN) {
  AudienceScanner scanner(engine_.get(), nullptr);
  const AudienceCondition c = MustCompile("attribute(\"city\") != \"\"");
  const std::vector<std::string> fields = {"attribute(\"city\")", "aov", "buyer", "monetary"};
  std::string next = "unchanged";
  absl::StatusOr<std::string> csv = scanner.Export({&c}, fields, "csv", 0, "", &next);
  ASSERT_TRUE(csv.ok()) << csv.status();
  EXPECT_EQ(next, "");
  const std::vector<std::vector<std::string>> rows = ParseCsv(*csv);
  ASSERT_EQ(rows.size(), 101u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"user_id", "attribute(\"city\")", "aov", "buyer",
                                               "monetary"}));
  const std::vector<std::string> members = Members(c);
  int empty_aov = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 5u);
    EXPECT_EQ(rows[i][0], members[i - 1]);
    EXPECT_TRUE(rows[i][1] == "Lyon" || rows[i][1] == "Saint-Denis, \"93\"");
    EXPECT_TRUE(rows[i][3] == "true" || rows[i][3] == "false");
    if (rows[i][2].empty()) {
      ++empty_aov;  // NaN: no orders
      EXPECT_EQ(rows[i][3], "false");
    } else {
      EXPECT_GT(std::stod(rows[i][2]), 0);
    }
  }
  EXPECT_GT(empty_aov, 0);

  // Pages of 30 concatenate to the full export.
  std::vector<std::vector<std::string>> paged = {rows[0]};
  std::string cursor;
  int pages = 0;
  do {
    absl::StatusOr<std::string> page = scanner.Export({&c}, fields, "csv", 30, cursor, &next);
    ASSERT_TRUE(page.ok());
    std::vector<std::vector<std::string>> part = ParseCsv(*page);
    ASSERT_FALSE(part.empty());
    EXPECT_EQ(part[0], rows[0]);
    paged.insert(paged.end(), part.begin() + 1, part.end());
    cursor = next;
    ++pages;
  } while (!cursor.empty() && pages < 100);
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(paged, rows);
}

TEST_F(AudienceScanTest, NdjsonExportIsOneObjectPerLineWithNullForNaN) {
  AudienceScanner scanner(engine_.get(), nullptr);
  const AudienceCondition c = MustCompile("not buyer");
  const std::vector<std::string> fields = {"aov", "views", "top_category",
                                           "interest.category(\"c1\")"};
  std::string next;
  absl::StatusOr<std::string> out = scanner.Export({&c}, fields, "ndjson", 0, "", &next);
  ASSERT_TRUE(out.ok()) << out.status();
  const std::vector<std::string> members = Members(c);
  simdjson::dom::parser parser;
  size_t line_start = 0;
  size_t n = 0;
  while (line_start < out->size()) {
    const size_t end = out->find('\n', line_start);
    ASSERT_NE(end, std::string::npos);
    const std::string line = out->substr(line_start, end - line_start);
    line_start = end + 1;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
    std::string_view id;
    ASSERT_EQ(doc["user_id"].get_string().get(id), simdjson::SUCCESS);
    ASSERT_LT(n, members.size());
    EXPECT_EQ(id, members[n]);
    EXPECT_TRUE(doc["aov"].is_null()) << line;  // no orders: NaN
    EXPECT_TRUE(doc["views"].is_number()) << line;
    EXPECT_TRUE(doc["top_category"].is_string()) << line;
    double share = -1;
    ASSERT_EQ(doc["interest.category(\"c1\")"].get_double().get(share), simdjson::SUCCESS);
    EXPECT_GE(share, 0);
    EXPECT_LE(share, 1);
    ++n;
  }
  EXPECT_EQ(n, members.size());
}

TEST_F(AudienceScanTest, ReportAddsUpToBruteForceAndNoiseIsReproducible) {
  AudienceScanner scanner(engine_.get(), nullptr);
  const AudienceCondition c = MustCompile("events >= 2");
  const std::vector<std::string> members = Members(c);
  const std::set<std::string> member_set(members.begin(), members.end());
  double spend = 0;
  std::map<std::string, uint64_t> lifecycle, tops;
  const int64_t now = engine_->NowMs();
  engine_->ForEachProfile([&](std::string_view id, const Profile& p, const ProfileContext& ctx) {
    if (!member_set.count(std::string(id))) return;
    spend += p.monetary();
    ++lifecycle[std::string(LifecycleStageName(p.Lifecycle(*ctx.config, now)))];
    ++tops[std::string(
        ProfileFeatures(p, ctx, now).String(AudienceCatalog().Lookup("top_category")->id))];
  });

  ReportOptions options;
  absl::StatusOr<AudienceReport> exact = scanner.Report({&c}, options);
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_EQ(exact->size, members.size());
  EXPECT_EQ(exact->scanned, 300u);
  EXPECT_NEAR(exact->spend_sum, spend, 1e-6 * spend);
  EXPECT_FALSE(exact->noisy);
  for (const AudienceReport::Bucket& b : exact->lifecycle) EXPECT_EQ(b.users, lifecycle[b.name]);
  ASSERT_FALSE(exact->top_categories.empty());
  for (const AudienceReport::Category& cat : exact->top_categories) {
    EXPECT_EQ(cat.users, tops[cat.category]) << cat.category;
    EXPECT_GT(cat.mean_share, 0);
    EXPECT_LE(cat.mean_share, 1);
  }
  uint64_t tier_total = 0;
  for (const AudienceReport::Bucket& b : exact->price_tiers) tier_total += b.users;
  EXPECT_EQ(tier_total, members.size());

  options.epsilon = 1.0;
  options.seed = 12345;
  absl::StatusOr<AudienceReport> noisy = scanner.Report({&c}, options);
  absl::StatusOr<AudienceReport> again = scanner.Report({&c}, options);
  ASSERT_TRUE(noisy.ok() && again.ok());
  EXPECT_TRUE(noisy->noisy);
  EXPECT_NE(noisy->spend_sum, exact->spend_sum);
  EXPECT_EQ(noisy->spend_sum, again->spend_sum);
  EXPECT_EQ(noisy->size, again->size);
  JsonWriter w;
  noisy->WriteJson(w);
  EXPECT_NE(w.str().find(R"("privacy":{"noisy":true,"mechanism":"laplace","epsilon":1,)"),
            std::string::npos)
      << w.str();

  options.epsilon = -1;
  EXPECT_EQ(scanner.Report({&c}, options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AudienceScanTest, QueryJsonHasTheDocumentedMembers) {
  AudienceScanner scanner(engine_.get(), nullptr);
  const AudienceCondition c = MustCompile("buyer");
  AudienceQueryOptions options;
  options.page_size = 2;
  options.sample = 1;
  options.fields = {"monetary"};
  absl::StatusOr<AudienceQueryResult> r = scanner.Query({&c}, options);
  ASSERT_TRUE(r.ok());
  JsonWriter w;
  w.BeginObject();
  r->WriteMembers(w);
  w.EndObject();
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(w.str()).get(doc), simdjson::SUCCESS) << w.str();
  EXPECT_EQ(uint64_t(doc["count"]), r->count);
  EXPECT_EQ(simdjson::dom::array(doc["ids"]).size(), 2u);
  EXPECT_EQ(std::string_view(doc["next_cursor"]), r->next_cursor);
  simdjson::dom::element first = simdjson::dom::array(doc["sample"]).at(0);
  EXPECT_TRUE(first["user_id"].is_string());
  EXPECT_TRUE(first["monetary"].is_number());
}

}  // namespace
}  // namespace persona
